import { RequestType } from 'vscode-languageserver-protocol';
import type { AskOutcome, ImageReuseCounts } from './reuse';

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

/** One finished `vlcache/ask`. */
export interface RecentAsk {
  /** Date.now() when it finished. */
  atMs: number;
  ttftMs: number;
  /** Any encoder, image-KV or exact-prefix reuse (also a reused system prompt alone: prefer `outcome`). */
  cacheHit: boolean;
  /** What the cache did for the ask's images (protocol/reuse.ts); the chart colours bars by it. */
  outcome?: AskOutcome;
  recomputeFraction: number;
  nImages: number;
}

export interface StatsResult {
  model: {
    /** 'released': unloaded after the idle timeout; the next request loads it again. */
    state: 'unloaded' | 'loading' | 'ready' | 'failed' | 'released';
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
    /** The last 50 finished asks, oldest first (the TTFT history). */
    recent: RecentAsk[];
    /**
     * Of every encoder and image-KV lookup in the store since the server started (across idle releases): the
     * fraction that hit. Absent before the first lookup.
     */
    hitRate?: number;
    /**
     * Images of every finished ask since the server started, by what happened to them (protocol/reuse.ts):
     * the status bar's "images reused" rate is (kv + prefix) / all.
     */
    images?: ImageReuseCounts;
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
