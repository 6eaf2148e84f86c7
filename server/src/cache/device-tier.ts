/**
 * The device tier: image KV kept in accelerator memory between requests, so that a reuse does not upload the
 * image's rows again (DESIGN.md §3a). It sits above RAM; the reuse engine (`ask/vlcache.ts`) looks here first and
 * puts entries it uploaded or sliced on the device.
 *
 * Why a narrow extension of `CacheTier` rather than `CacheTier<CacheEntry>`: a device entry is a set of opaque
 * handles to device memory (engine tensors), not host bytes. This folder may not import the engine, so the tier
 * never reads, copies or checks an entry; it only counts the `bytes` the entry declares and hands the entry to the
 * `release` callback when it leaves (eviction, delete, replacement, clear), which frees the device memory. Host
 * bytes in RAM are reclaimed by the garbage collector; device memory is not, hence the callback.
 *
 * Ownership: the tier owns every entry it holds. An entry it refuses (larger than the whole budget, or a budget of
 * 0) stays the caller's to release; `has(key)` after `put` tells which.
 */
import type { EntryKind } from './entry';
import { lru, UsageTable, type EvictionPolicy } from './policy';
import type { CacheTier, EvictionListener, TierStats } from './tier';

/** What the tier needs to know of a device entry; the rest (its tensors) is the engine's. */
export interface DeviceEntry {
  readonly key: string;
  readonly kind: EntryKind;
  readonly bytes: number; // device memory the entry holds, counted against the budget
}

export interface DeviceTierParams<E extends DeviceEntry> {
  budgetBytes: number; // 0 turns the tier off
  /** Frees an entry's device memory; called exactly once for each entry the tier held, when it leaves. */
  release: (entry: E) => void;
  policy?: EvictionPolicy; // default lru
  onEvict?: EvictionListener;
}

export class DeviceTier<E extends DeviceEntry> implements CacheTier<E> {
  readonly name = 'device' as const;
  private readonly entries = new Map<string, E>();
  private readonly usage = new UsageTable(); // a counter clock: device memory never outlives the process
  private readonly budget: number;
  private readonly policy: EvictionPolicy;
  private nEvictions = 0;

  constructor(private readonly p: DeviceTierParams<E>) {
    if (!(Number.isSafeInteger(p.budgetBytes) && p.budgetBytes >= 0)) throw new RangeError(`device budget must be a non-negative integer of bytes, not ${p.budgetBytes}`);
    this.budget = p.budgetBytes;
    this.policy = p.policy ?? lru;
  }

  get(key: string): E | undefined {
    const e = this.entries.get(key);
    if (e) this.usage.touch(key);
    return e;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  put(entry: E): void {
    const key = entry.key;
    if (!(Number.isSafeInteger(entry.bytes) && entry.bytes >= 0)) throw new RangeError(`device entry ${key.slice(0, 12)} declares ${entry.bytes} bytes`);
    const old = this.entries.get(key);
    if (old === entry) return;
    if (entry.bytes > this.budget || this.budget === 0) {
      // Not kept (the caller still owns it); an older entry under the key would now be stale.
      this.delete(key);
      return;
    }
    for (const victim of this.usage.victims(this.policy, this.budget, entry.bytes, key)) {
      const e = this.entries.get(victim)!;
      this.remove(victim);
      this.nEvictions++;
      this.p.onEvict?.({ tier: 'device', key: victim, kind: e.kind, bytes: e.bytes });
    }
    if (old) this.remove(key);
    this.entries.set(key, entry);
    this.usage.add(key, entry.bytes);
  }

  delete(key: string): boolean {
    if (!this.entries.has(key)) return false;
    this.remove(key);
    return true;
  }

  /** Releases every entry (idle release, a cache clear, model unload): the device memory goes back. */
  clear(): void {
    for (const key of [...this.entries.keys()]) this.remove(key);
  }

  keys(): string[] {
    return this.usage.order(this.policy);
  }

  stats(): TierStats {
    return { tier: 'device', enabled: this.budget > 0, nEntries: this.entries.size, bytes: this.usage.bytes,
      budgetBytes: this.budget, nEvictions: this.nEvictions };
  }

  /** Puts complete at once (the entry's memory was written by the engine before `put`). */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  private remove(key: string): void {
    const e = this.entries.get(key)!;
    this.entries.delete(key);
    this.usage.remove(key);
    this.p.release(e);
  }
}
