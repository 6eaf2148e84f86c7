/**
 * The seam every cache tier implements: device memory (`device-tier.ts`), host RAM (`ram-tier.ts`) and disk
 * (`disk-tier.ts`).
 *
 * A tier is a keyed set of entries with a byte budget and an eviction policy. Tiers do not know about each other;
 * `TieredStore` (store.ts) looks up RAM then disk and promotes hits. The device tier holds opaque handles to
 * device tensors rather than host bytes, so the interface is generic in the entry type; that tier never touches
 * the handles itself (this folder does not import the engine) and releases them through a callback.
 */
import type { CacheEntry, EntryKind } from './entry';

export type TierName = 'device' | 'ram' | 'disk';

/** A snapshot of one tier's occupancy. */
export interface TierStats {
  tier: TierName;
  enabled: boolean; // false when the tier cannot store anything (zero budget, or a disk that cannot be written)
  nEntries: number; // entries this tier would serve
  bytes: number; // what those entries count against the budget
  budgetBytes: number;
  nEvictions: number; // entries evicted to make room since the tier was created
}

/** Called once for every entry a tier evicts to make room (not for deletes, clears or replacements). */
export type EvictionListener = (ev: { tier: TierName; key: string; kind: EntryKind; bytes: number }) => void;

/** Where a tier's messages go (warnings that the user should see once, never per request). */
export type CacheLog = (message: string) => void;

export interface CacheTier<E extends { readonly key: string } = CacheEntry> {
  readonly name: TierName;

  /** The entry, or `undefined` on a miss. A hit counts as an access for the eviction policy. Never throws. */
  get(key: string): E | undefined;

  /** Whether `get` would find the entry (as far as the tier knows without reading it); not an access. */
  has(key: string): boolean;

  /**
   * Stores the entry, evicting others to fit. An entry larger than the whole budget is not kept (and an older
   * entry under its id is dropped, being stale). The write may complete later: see `flush`. Never throws for
   * expected conditions (no space, no permission); a malformed entry is the caller's bug.
   */
  put(entry: E): void;

  /** Removes the entry; returns whether the tier held it. */
  delete(key: string): boolean;

  /** Removes every entry the tier holds. */
  clear(): void;

  /** The keys of the entries the tier would serve, first to be evicted first. */
  keys(): string[];

  stats(): TierStats;

  /** Resolves when every `put` issued so far has been completed or abandoned. Never rejects. */
  flush(): Promise<void>;
}
