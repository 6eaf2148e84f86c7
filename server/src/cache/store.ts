/**
 * `TieredStore`: the VLCache entry store of one workspace and one model, host RAM over disk.
 *
 * - `get` looks in RAM, then on disk; a disk hit is verified and promoted to RAM. Entries of another model are
 *   never returned (they are not in RAM, and the disk tier treats their files as absent).
 * - `put` stores in RAM at once and queues a write-through to disk (`flush` waits for it).
 * - Whatever tier serves an entry, its bytes and metadata are the ones that were put: RAM keeps the object itself,
 *   and the disk format round-trips tensors bit for bit and metadata through JSON (which `put` checks is lossless).
 * - Expected conditions (a miss, a damaged file, a full or read-only disk) are values or log lines, never
 *   exceptions; only a malformed entry (a caller bug) throws.
 *
 * The device (GPU) tier belongs to the engine; it would sit above RAM behind the same `CacheTier` seam (tier.ts).
 */
import { entryProblem, KEY_PATTERN, type CacheEntry, type EntryKind } from './entry';
import { DiskTier, type DiskTierStats } from './disk-tier';
import type { DecodeFailure } from './disk-format';
import type { FileFailure } from './disk-dir';
import { lru, type EvictionPolicy } from './policy';
import { RamTier } from './ram-tier';
import type { CacheLog, EvictionListener, TierStats } from './tier';

export interface TieredStoreParams {
  dir?: string; // the workspace's cache directory; omitted: RAM only
  ramBytes: number; // host RAM budget, in payload bytes (entryBytes)
  diskBytes: number; // budget of the directory's entry files, in file bytes
  modelFingerprint: string; // the only model whose entries this store serves
  log?: CacheLog; // default: stderr
  policy?: EvictionPolicy; // default lru, in both tiers
  onEvict?: EvictionListener;
}

/** Which tier served a hit. */
export type StoreTier = 'ram' | 'disk';

export interface StoreHit {
  entry: CacheEntry;
  tier: StoreTier;
}

/**
 * What the reuse engine (ask/vlcache.ts) needs of a store: `TieredStore` below, or map-store.ts's
 * unbounded `MapStore` (tests and the fidelity harness).
 */
export interface EntryStore {
  /** `kind` names what is looked for, so the store counts a miss as an encoder or KV miss. */
  get(key: string, kind?: EntryKind): StoreHit | undefined;
  put(entry: CacheEntry): void;
  /** Presence without reading the entry (a disk tier can answer from its index). */
  has(key: string, kind?: EntryKind): boolean;
  /** Bytes waiting to be written to disk, and a promise for when they are. */
  backlogBytes(): number;
  flush(): Promise<void>;
}

/** Lookup counts by the kind asked for; `unknown` counts lookups that did not name a kind and missed. */
export interface KindCounts {
  encoder: number;
  kv: number;
  unknown: number;
}

export interface StoreStats {
  modelFingerprint: string;
  ram: TierStats & { hits: KindCounts; misses: KindCounts };
  disk?: DiskTierStats & { hits: KindCounts; misses: KindCounts }; // absent without a directory
  hits: KindCounts; // served by any tier
  misses: KindCounts; // found in no tier
}

export interface StoreVerifyReport {
  nChecked: number;
  nOk: number;
  nForeign: number; // intact files of other models: kept, never served
  nDropped: number; // files that did not verify: deleted (where possible), to be recomputed
  dropped: { key: string; reason: DecodeFailure | 'unreadable'; detail: string }[];
}

export class TieredStore implements EntryStore {
  readonly modelFingerprint: string;
  private readonly ram: RamTier;
  private readonly disk?: DiskTier;
  private readonly counts = {
    ram: { hits: zero(), misses: zero() },
    disk: { hits: zero(), misses: zero() },
    all: { hits: zero(), misses: zero() },
  };

  /** @throws RangeError for a negative or fractional budget. */
  constructor(p: TieredStoreParams) {
    this.modelFingerprint = p.modelFingerprint;
    const policy = p.policy ?? lru;
    this.ram = new RamTier({ budgetBytes: p.ramBytes, policy, onEvict: p.onEvict });
    if (p.dir !== undefined) {
      this.disk = new DiskTier({ dir: p.dir, budgetBytes: p.diskBytes, modelFingerprint: p.modelFingerprint, policy, log: p.log, onEvict: p.onEvict });
    }
  }

  /**
   * The entry under `key`, and the tier that served it; `undefined` on a miss. With `kind`, an entry of the other
   * kind is a miss. A hit counts as an access in every tier that holds the entry.
   */
  get(key: string, kind?: EntryKind): StoreHit | undefined {
    if (!KEY_PATTERN.test(key)) return this.miss(kind, 'ram');
    const inRam = this.ram.get(key);
    if (inRam && (kind === undefined || inRam.kind === kind)) {
      this.disk?.touch(key);
      return this.hit(inRam, 'ram');
    }
    this.count('ram', 'misses', kind);
    if (!this.disk) return this.miss(kind);
    const onDisk = this.disk.get(key, kind);
    if (!onDisk) return this.miss(kind, 'disk');
    this.ram.put(onDisk);
    return this.hit(onDisk, 'disk');
  }

  /** Whether `get` would probably hit, without reading anything or counting an access. */
  has(key: string, kind?: EntryKind): boolean {
    const inRam = this.ram.peek(key);
    if (inRam) return kind === undefined || inRam.kind === kind;
    return this.disk?.has(key) ?? false;
  }

  /**
   * Keeps the entry in RAM now and queues its write to disk. The store takes ownership of the entry: do not write
   * into its tensors afterwards.
   * @throws TypeError when the entry is malformed, its metadata would not survive JSON, or it is of another model.
   */
  put(entry: CacheEntry): void {
    const problem = entryProblem(entry);
    if (problem) throw new TypeError(`cache entry: ${problem}`);
    if (entry.modelFingerprint !== this.modelFingerprint) {
      throw new TypeError(`cache entry of model ${entry.modelFingerprint} put into the store of ${this.modelFingerprint}`);
    }
    this.ram.put(entry);
    this.disk?.put(entry);
  }

  /** Removes the entry from every tier; returns whether any tier held it. */
  delete(key: string): boolean {
    const inRam = this.ram.delete(key);
    const onDisk = this.disk?.delete(key) ?? false;
    return inRam || onDisk;
  }

  /** Removes every entry from RAM and every entry file from the directory (of any model). */
  clear(): void {
    this.ram.clear();
    this.disk?.clear();
  }

  stats(): StoreStats {
    const c = this.counts;
    return {
      modelFingerprint: this.modelFingerprint,
      ram: { ...this.ram.stats(), hits: { ...c.ram.hits }, misses: { ...c.ram.misses } },
      disk: this.disk && { ...this.disk.stats(), hits: { ...c.disk.hits }, misses: { ...c.disk.misses } },
      hits: { ...c.all.hits },
      misses: { ...c.all.misses },
    };
  }

  /** Re-reads every file in the directory; drops those that do not verify and reports foreign ones. */
  verify(): StoreVerifyReport {
    const r = this.disk?.verify();
    if (!r) return { nChecked: 0, nOk: 0, nForeign: 0, nDropped: 0, dropped: [] };
    const dropped = r.files.filter((f) => f.status === 'dropped').map((f) => ({ key: f.key, ...(f.failure as FileFailure) }));
    return { nChecked: r.nChecked, nOk: r.nOk, nForeign: r.nForeign, nDropped: r.nDropped, dropped };
  }

  /** Resolves when every queued disk write has landed or been abandoned. Never rejects. */
  /** Bytes queued for the disk and not yet written; see DiskTier.backlogBytes. */
  backlogBytes(): number {
    return this.disk?.backlogBytes() ?? 0;
  }

  flush(): Promise<void> {
    return this.disk?.flush() ?? Promise.resolve();
  }

  /** Waits for queued writes; the store stays usable (there is nothing to release). */
  close(): Promise<void> {
    return this.flush();
  }

  private hit(entry: CacheEntry, tier: StoreTier): StoreHit {
    this.count(tier, 'hits', entry.kind);
    this.count('all', 'hits', entry.kind);
    return { entry, tier };
  }

  private miss(kind: EntryKind | undefined, tier?: StoreTier): undefined {
    if (tier) this.count(tier, 'misses', kind);
    this.count('all', 'misses', kind);
    return undefined;
  }

  private count(where: StoreTier | 'all', what: 'hits' | 'misses', kind: EntryKind | undefined): void {
    this.counts[where][what][kind ?? 'unknown']++;
  }
}

function zero(): KindCounts {
  return { encoder: 0, kv: 0, unknown: 0 };
}
