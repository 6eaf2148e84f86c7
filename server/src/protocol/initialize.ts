/**
 * What the client passes at `initialize` (`initializationOptions`) and what the
 * server adds to its `InitializeResult`.
 */
import type { InitializeResult } from 'vscode-languageserver-protocol';

/**
 * Version of the vlcache/* protocol. Bump it on every incompatible change of a
 * message in server/src/protocol/ (test/unit/server/protocol.test.ts checks it).
 */
export const PROTOCOL_VERSION = 1;

export type DeviceSetting = 'auto' | 'cpu' | 'webgpu' | 'cuda';
export type ReuseMode = 'full' | 'prefix' | 'naive' | 'epic' | 'vlcache' | 'cacheblend';

/** Settings the daemon needs at boot (the `vlcache.*` settings that require a restart). */
export interface InitializationOptions {
  /** The per-workspace cache directory: the extension's workspace storage. Omitted: a RAM-only cache. */
  cacheDir?: string;
  /**
   * A folder of images the editor wrote itself (images pasted or dropped into Chat, named by the SHA-256 of their
   * bytes): images there may be asked about as if they lay in a workspace folder. Created when missing.
   */
  attachmentDir?: string;
  /** A Qwen2-VL / Qwen2.5-VL checkpoint folder. Omitted: the built-in tiny model. */
  modelPath?: string;
  device?: DeviceSetting;
  precision?: 'auto' | 'fp32' | 'fp16';
  /** Decode through a KV arena on the device (default auto: on CUDA only). */
  kvArena?: 'auto' | 'on' | 'off';
  /** The KV arena's initial rows (default 1024; it doubles when full, up to the model's context). */
  kvArenaRows?: number;
  /** How cached image KV is reused (default vlcache). */
  mode?: ReuseMode;
  /** Recompute ratio r (vlcache 0.05, cacheblend 0.15). Omitted: a calibrated schedule when there is one. */
  ratio?: number;
  /** Host RAM budget of the cache, MiB (default 4096). */
  ramBudgetMb?: number;
  /** Disk budget of the cache directory, MiB (default 20480). */
  diskBudgetMb?: number;
  /** Caps the image area below the checkpoint's max_pixels. */
  maxPixels?: number;
  /** Load the model during `initialize` instead of on the first request. */
  loadModelAtStartup?: boolean;
  /**
   * Release the model, device KV and open cache after this many seconds without requests (default 600; 0 = never).
   * The next request loads it again.
   */
  idleTimeoutS?: number;
  /** Answer `textDocument/hover` on image references (default true). False: no hover capability is declared. */
  hover?: boolean;
  /**
   * How long a hover waits for a missing explanation before answering "being prepared" (default 0: it answers at once
   * and the explanation starts after the answer; a wait > 0 starts it at once and may block on a model load).
   */
  hoverWaitMs?: number;
  /**
   * When a Markdown document opens and the model is already loaded, encode and prefill the
   * workspace images it shows in the background (default true), so a first question about
   * them is a cache hit. Never loads the model by itself.
   */
  prefetchOnOpen?: boolean;
}

/** The server's own part of the InitializeResult. */
export interface VlcacheInitializeResult extends InitializeResult {
  protocolVersion: number;
}
