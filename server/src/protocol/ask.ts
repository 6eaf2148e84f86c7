import { ProgressType, RequestType } from 'vscode-languageserver-protocol';
import type { PartialResultParams, WorkDoneProgressParams } from 'vscode-languageserver-protocol';
import type { ReuseMode } from './initialize';

export interface AskParams extends WorkDoneProgressParams, PartialResultParams {
  /** file:// URIs or workspace-relative paths; each must lie inside a workspace folder. */
  images: string[];
  question: string;
  /** Earlier text turns of the conversation (follow-up questions). */
  history?: { role: 'user' | 'assistant'; content: string }[];
  maxTokens?: number;
  /** 0 (default): greedy. Above 0 samples among the 64 most likely tokens, then top-p (README, sampling). */
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Override of the initialize-time reuse mode and ratio. */
  mode?: ReuseMode;
  ratio?: number;
}

/** A streamed piece of the answer, sent as `$/progress` on the request's partialResultToken. */
export interface AskPartialResult {
  /** Text to append to what came before. */
  delta: string;
}

export const AskPartialResultType = new ProgressType<AskPartialResult>();

/** Per-request cache statistics (`vlcache ask --json`'s `cache`, in camelCase). */
export interface AskCacheStats {
  mode: ReuseMode;
  encoderHits: number;
  encoderMisses: number;
  kvHits: number;
  kvMisses: number;
  prefixTokensReused: number;
  imageTokensReused: number;
  tokensComputed: number;
  tokensTotal: number;
  recomputeFraction: number;
  /** Where each hit came from, e.g. ["encoder:ram", "kv:disk"]. */
  tier: string[];
}

export interface AskTimings {
  preprocessMs: number;
  visionMs: number;
  prefillMs: number;
  ttftMs: number;
  decodeMs: number;
  decodeTokensPerS: number;
  /** Time waiting in the queue (and for the model to load). */
  queueMs: number;
}

/**
 * What happened to one image of an ask, so the editor can say it exactly:
 * - `kv`: its K/V came from the image cache (`tier` says which; under `vlcache` a few rows are recomputed);
 * - `prefix`: its rows were part of an exact cached prompt prefix (the same image after the same text);
 * - `encoder`: the vision encoder's output was reused, its K/V computed;
 * - `cold`: encoded and computed.
 * A reused system prompt alone is none of these: the image is `cold` (see `prefixTokensReused`).
 */
export interface AskImageReuse {
  kind: 'kv' | 'prefix' | 'encoder' | 'cold';
  /** Where the reused entry was found (`prefix`: always `ram`); absent when `cold`. */
  tier?: 'ram' | 'disk';
}

export interface AskResult {
  /** The whole answer (also when it was streamed). */
  text: string;
  stopReason: 'eos' | 'length' | 'cancelled';
  nPromptTokens: number;
  nGeneratedTokens: number;
  device: string;
  /** `reuse`: what happened to the image (absent from older daemons). */
  images: { image: string; width: number; height: number; nTokens: number; downscaled: boolean; reuse?: AskImageReuse }[];
  cache: AskCacheStats;
  timings: AskTimings;
}

/**
 * Client → server. A question about images. The answer streams as
 * {@link AskPartialResult}s on `partialResultToken`; `workDoneToken` gets
 * begin/report/end progress (queued, loading, encoding, generating). `$/cancelRequest`
 * drops it if it has not started, or stops generation between steps, answering
 * the partial text with `stopReason: 'cancelled'`.
 */
export namespace AskRequest {
  export const method = 'vlcache/ask' as const;
  export const type = new RequestType<AskParams, AskResult, void>(method);
}
