/**
 * The host RAM tier: entries kept as they were put (no copy), on `lru-cache` with a byte budget.
 *
 * `lru-cache` holds the entries and does the byte accounting (`maxSize` + `sizeCalculation`, `maxEntrySize`).
 * Eviction is chosen by our policy plug-in before each insertion, so that `lru`, `lfu` and `fifo` all behave the
 * same way in every tier; with room made beforehand, `lru-cache` never has to evict on its own. Its own eviction is
 * kept as a backstop and reported like ours.
 */
import { LRUCache } from 'lru-cache';
import { entryBytes, type CacheEntry } from './entry';
import { lru, UsageTable, type EvictionPolicy } from './policy';
import type { CacheTier, EvictionListener, TierStats } from './tier';

export interface RamTierParams {
  budgetBytes: number; // 0 turns the tier off
  policy?: EvictionPolicy; // default lru
  onEvict?: EvictionListener;
}

/**
 * What an entry counts against the RAM budget: its payload bytes, and at least 1 (`lru-cache` refuses sizes of 0,
 * and an entry with no tensors still occupies a slot).
 */
export function ramBytes(e: CacheEntry): number {
  return Math.max(1, entryBytes(e));
}

export class RamTier implements CacheTier {
  readonly name = 'ram' as const;
  private readonly budget: number;
  private readonly policy: EvictionPolicy;
  private readonly onEvict?: EvictionListener;
  private readonly cache?: LRUCache<string, CacheEntry>; // undefined when the budget is 0
  private readonly usage = new UsageTable(); // a counter clock: RAM order never outlives the process
  private nEvictions = 0;

  constructor(p: RamTierParams) {
    if (!(Number.isSafeInteger(p.budgetBytes) && p.budgetBytes >= 0)) throw new RangeError(`RAM budget must be a non-negative integer of bytes, not ${p.budgetBytes}`);
    this.budget = p.budgetBytes;
    this.policy = p.policy ?? lru;
    this.onEvict = p.onEvict;
    if (this.budget === 0) return;
    this.cache = new LRUCache<string, CacheEntry>({
      maxSize: this.budget,
      maxEntrySize: this.budget,
      sizeCalculation: ramBytes,
      // NOTE: reason 'evict' only happens if our accounting and lru-cache's ever disagree; deletes and
      // replacements (reasons 'delete' and 'set') are our own doing and already accounted for.
      dispose: (entry, key, reason) => {
        if (reason === 'evict') this.evicted(key, entry);
      },
    });
  }

  get(key: string): CacheEntry | undefined {
    const e = this.cache?.get(key);
    if (e) this.usage.touch(key);
    return e;
  }

  /** The entry without counting an access. */
  peek(key: string): CacheEntry | undefined {
    return this.cache?.peek(key);
  }

  has(key: string): boolean {
    return this.cache?.has(key) ?? false;
  }

  put(entry: CacheEntry): void {
    if (!this.cache) return;
    const key = entry.key;
    const size = ramBytes(entry);
    if (size > this.budget) {
      // The entry cannot be kept; an older one under the same key would now be stale.
      this.delete(key);
      return;
    }
    for (const victim of this.usage.victims(this.policy, this.budget, size, key)) {
      const e = this.cache.peek(victim);
      this.cache.delete(victim);
      if (e) this.evicted(victim, e);
      else this.usage.remove(victim);
    }
    this.cache.set(key, entry);
    this.usage.add(key, size);
  }

  delete(key: string): boolean {
    this.usage.remove(key);
    return this.cache?.delete(key) ?? false;
  }

  clear(): void {
    this.cache?.clear();
    this.usage.clear();
  }

  keys(): string[] {
    return this.usage.order(this.policy);
  }

  stats(): TierStats {
    return {
      tier: 'ram',
      enabled: this.cache !== undefined,
      nEntries: this.cache?.size ?? 0,
      bytes: this.cache?.calculatedSize ?? 0,
      budgetBytes: this.budget,
      nEvictions: this.nEvictions,
    };
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  private evicted(key: string, e: CacheEntry): void {
    const bytes = this.usage.get(key)?.bytes ?? ramBytes(e);
    this.usage.remove(key);
    this.nEvictions++;
    this.onEvict?.({ tier: 'ram', key, kind: e.kind, bytes });
  }
}
