import { RequestType } from 'vscode-languageserver-protocol';

export type StatsParams = Record<string, never>;

export interface KindCounts {
  encoder: number;
  kv: number;
}

export interface TierSummary {
  nEntries: number;
  bytes: number;
  budgetBytes: number;
  nEvictions: number;
}

export interface StatsResult {
  model: {
    state: 'unloaded' | 'loading' | 'ready' | 'failed';
    path: string;
    device?: string;
    fallbackReasons: string[];
  };
  /** The cache directory in use; absent for a RAM-only cache. */
  cacheDir?: string;
  /** Absent until the model (and with it the store) is loaded. */
  cache?: {
    ram: TierSummary;
    disk?: TierSummary & { dir: string };
    hits: KindCounts;
    misses: KindCounts;
  };
  requests: {
    nAsks: number;
    nPrefetches: number;
    nCancelled: number;
    /** Of the last finished ask. */
    lastTtftMs?: number;
    lastRecomputeFraction?: number;
  };
  queue: { nInteractive: number; nBackground: number; running: boolean };
}

/**
 * Client → server. Cache, model and request statistics, for the status bar and
 * the details view; sent when they are opened (the server pushes changes as
 * `vlcache/status` `stats` notifications).
 */
export namespace StatsRequest {
  export const method = 'vlcache/stats' as const;
  export const type = new RequestType<StatsParams, StatsResult, void>(method);
}
