/** An unbounded in-RAM entry store: for the fidelity harness and tests, where persistence would only add noise. */
import type { CacheEntry, EntryKind } from './entry';
import type { EntryStore, StoreHit } from './store';

export class MapStore implements EntryStore {
  private readonly map = new Map<string, CacheEntry>();

  get(key: string, kind?: EntryKind): StoreHit | undefined {
    const e = this.map.get(key);
    return e && (kind === undefined || e.kind === kind) ? { entry: e, tier: 'ram' } : undefined;
  }

  put(e: CacheEntry): void {
    this.map.set(e.key, e);
  }

  has(key: string, kind?: EntryKind): boolean {
    return this.get(key, kind) !== undefined;
  }

  /** Nothing is ever written to disk. */
  backlogBytes(): number {
    return 0;
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  get size(): number {
    return this.map.size;
  }
}
