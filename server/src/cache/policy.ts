/**
 * Eviction policies as plug-ins, and the usage table the tiers keep for them.
 *
 * A policy maps an entry's usage record to a sort key; the tier evicts the entry with the smallest key first.
 * Ties are broken by entry id, so an eviction order is a pure function of the usage table and can be pinned in
 * tests. The tiers own the usage records; a policy only reads them.
 */

/** What a tier knows about one resident entry. Stamps come from the table's monotonic clock. */
export interface EntryUsage {
  readonly id: string; // the entry's key
  bytes: number; // what the entry counts against the tier's budget
  inserted: number; // stamp of the last put
  lastAccess: number; // stamp of the last put or hit
  nAccess: number; // hits since the entry was first put in this tier (in this process)
}

/** Compared element by element; the entry with the smallest sort key is evicted first. */
export type SortKey = readonly number[];

export interface EvictionPolicy {
  readonly name: string;
  sortKey(u: EntryUsage): SortKey;
}

/** Least recently used first: the default. */
export const lru: EvictionPolicy = { name: 'lru', sortKey: (u) => [u.lastAccess] };

/** Least frequently used first; among equally used entries, the least recently used. */
export const lfu: EvictionPolicy = { name: 'lfu', sortKey: (u) => [u.nAccess, u.lastAccess] };

/** Oldest insertion first, whatever the hits. */
export const fifo: EvictionPolicy = { name: 'fifo', sortKey: (u) => [u.inserted] };

export const POLICIES: Readonly<Record<string, EvictionPolicy>> = { lru, lfu, fifo };

/** The policy of that name, or `undefined` (a settings value is checked with this before use). */
export function policyByName(name: string): EvictionPolicy | undefined {
  return Object.prototype.hasOwnProperty.call(POLICIES, name) ? POLICIES[name] : undefined;
}

/** A comparator that sorts usages into eviction order under `policy`. */
export function evictionComparator(policy: EvictionPolicy): (a: EntryUsage, b: EntryUsage) => number {
  return (a, b) => {
    const ka = policy.sortKey(a);
    const kb = policy.sortKey(b);
    for (let i = 0; i < Math.max(ka.length, kb.length); i++) {
      const d = (ka[i] ?? 0) - (kb[i] ?? 0);
      if (d !== 0) return d;
    }
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  };
}

/**
 * Usage records of the entries resident in one tier, with a clock whose stamps strictly increase.
 *
 * `now` supplies the time base: the RAM tier passes `() => 0`, which makes the clock a plain counter; the disk tier
 * passes `Date.now`, so its stamps can be stored as file modification times and read back after a restart.
 */
export class UsageTable {
  private readonly records = new Map<string, EntryUsage>();
  private clock: number;
  private total = 0;

  constructor(private readonly now: () => number = () => 0, start = 0) {
    this.clock = start;
  }

  /** A new stamp, larger than every earlier one (and than `floor`, when given). */
  stamp(floor = -Infinity): number {
    this.clock = Math.max(this.now(), this.clock + 1, floor);
    return this.clock;
  }

  /** Records a put. Replacing an entry keeps its hit count (for `lfu`) and takes the new size. */
  add(id: string, bytes: number, stamp = this.stamp()): void {
    this.clock = Math.max(this.clock, stamp);
    const old = this.records.get(id);
    if (old) this.total -= old.bytes;
    this.records.set(id, { id, bytes, inserted: stamp, lastAccess: stamp, nAccess: old?.nAccess ?? 0 });
    this.total += bytes;
  }

  /** Records a hit. A stamp older than the one held (from a slower clock) never moves an entry back. */
  touch(id: string, stamp = this.stamp()): void {
    const u = this.records.get(id);
    if (!u) return;
    u.lastAccess = Math.max(u.lastAccess, stamp);
    u.nAccess++;
  }

  remove(id: string): void {
    const u = this.records.get(id);
    if (!u) return;
    this.total -= u.bytes;
    this.records.delete(id);
  }

  clear(): void {
    this.records.clear();
    this.total = 0;
  }

  get(id: string): EntryUsage | undefined {
    return this.records.get(id);
  }

  get size(): number {
    return this.records.size;
  }

  /** The sum of the recorded entries' bytes. */
  get bytes(): number {
    return this.total;
  }

  /** Every id, first to be evicted first. */
  order(policy: EvictionPolicy): string[] {
    return [...this.records.values()].sort(evictionComparator(policy)).map((u) => u.id);
  }

  /**
   * The ids to evict, in order, so that `incoming` more bytes fit within `budget`. The entry `replacing` (the id
   * being rewritten) is never chosen, and its current bytes count as freed.
   * Precondition: `incoming <= budget` (the caller refuses larger entries before asking).
   */
  victims(policy: EvictionPolicy, budget: number, incoming: number, replacing?: string): string[] {
    const replaced = replacing === undefined ? 0 : (this.records.get(replacing)?.bytes ?? 0);
    let excess = this.total - replaced + incoming - budget;
    if (excess <= 0) return [];
    const out: string[] = [];
    for (const id of this.order(policy)) {
      if (id === replacing) continue;
      out.push(id);
      excess -= this.records.get(id)!.bytes;
      if (excess <= 0) break;
    }
    return out;
  }
}
