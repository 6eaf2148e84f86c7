/** An unbounded in-RAM entry store: for the fidelity harness and tests, where persistence would only add noise. */
import type { CacheEntry, EntryStore } from './vlcache';

export class MapStore implements EntryStore {
  private readonly map = new Map<string, CacheEntry>();

  get(key: string): { entry: CacheEntry; tier: string } | undefined {
    const e = this.map.get(key);
    return e ? { entry: e, tier: 'ram' } : undefined;
  }

  put(e: CacheEntry): void {
    this.map.set(e.key, e);
  }

  get size(): number {
    return this.map.size;
  }
}
