/** Opens the per-workspace cache store for the CLI (the daemon passes its own directory). */
import { TieredStore } from '../cache/store';

export interface StoreOptions {
  ramBytes?: number;
  diskBytes?: number;
  log?: (m: string) => void;
}

export function openStore(dir: string | undefined, fingerprint: string, o: StoreOptions): { store: TieredStore; close(): Promise<void> } {
  const store = new TieredStore({
    dir, modelFingerprint: fingerprint, ramBytes: o.ramBytes ?? 4 * 2 ** 30, diskBytes: o.diskBytes ?? 20 * 2 ** 30,
    log: o.log ?? ((m) => console.error(`vlcache: ${m}`)),
  });
  // close() waits for queued disk writes (put() returns before the file is written).
  return { store, close: () => store.close() };
}
