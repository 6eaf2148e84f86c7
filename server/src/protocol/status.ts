import { NotificationType } from 'vscode-languageserver-protocol';
import type { StatsResult } from './stats';

/** The model is loading: `percentage` 0-100 with a line for the user. */
export interface LoadingStatus {
  kind: 'loading';
  message: string;
  percentage: number;
}

/** The model is loaded and runs on `device`; `fallbackReasons` says why faster devices were skipped. */
export interface ReadyStatus {
  kind: 'ready';
  device: string;
  modelPath: string;
  fallbackReasons: string[];
  loadMs: number;
}

/** Cache statistics changed (after an ask, a prefetch or a clear). */
export interface StatsStatus {
  kind: 'stats';
  stats: StatsResult;
}

/** Something failed outside a request's own answer (model load, disk tier); `code` from ErrorCodes. */
export interface ErrorStatus {
  kind: 'error';
  message: string;
  code?: number;
}

/**
 * An image's explanation (the hover's, `vlcache/explain`'s) finished computing; a hover on it now shows it.
 * Sent whether or not a request still waits for it.
 */
export interface ExplainedStatus {
  kind: 'explained';
  /** The image's file URI. */
  image: string;
  text: string;
}

/** The model, device KV and open cache were released after `idleTimeoutS` without requests. */
export interface ReleasedStatus {
  kind: 'released';
  reason: string;
}

export type StatusParams = LoadingStatus | ReadyStatus | StatsStatus | ErrorStatus | ExplainedStatus | ReleasedStatus;

/**
 * Server → client. Sent while the model loads (progress, then `ready` with the
 * device in use), after every request that changed the cache (`stats`), and on
 * errors the user should see that no request reports, when an explanation finishes (`explained`), and when the
 * model is released for idleness (`released`).
 */
export namespace StatusNotification {
  export const method = 'vlcache/status' as const;
  export const type = new NotificationType<StatusParams>(method);
}
