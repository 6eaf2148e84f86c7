import { RequestType } from 'vscode-languageserver-protocol';
import type { WorkDoneProgressParams } from 'vscode-languageserver-protocol';

export interface DownloadModelParams extends WorkDoneProgressParams {
  /** A Hugging Face model id, `owner/name` (e.g. `Qwen/Qwen2-VL-2B-Instruct`). */
  repo: string;
  /** The folder the model folder `<dest>/<name>` is made in (absolute, on the daemon's machine). */
  dest: string;
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** A Hugging Face token for gated models; else the daemon's HF_TOKEN. Sent to the hub endpoint only. */
  token?: string;
  /**
   * The hub's origin, e.g. a mirror (the extension's `vlcache.model.hubEndpoint`); absent: the daemon's
   * HF_ENDPOINT, else https://huggingface.co. https, or http to a loopback address only.
   */
  endpoint?: string;
}

export interface DownloadModelResult {
  /** The checked model folder: what `vlcache.modelPath` should be set to. */
  dir: string;
  repo: string;
  /** The commit the revision resolved to. */
  commit: string;
  /** `qwen2_vl` or `qwen2_5_vl`. */
  modelType: string;
  files: string[];
  totalBytes: number;
  /** Bytes fetched by this request (the rest was already there, verified, or resumed from .part files). */
  fetchedBytes: number;
}

/** The checkpoints the extension offers by name; any Qwen2-VL / Qwen2.5-VL repo works. */
export const SUGGESTED_MODEL_REPOS = ['Qwen/Qwen2-VL-2B-Instruct', 'Qwen/Qwen2.5-VL-3B-Instruct', 'Qwen/Qwen2.5-VL-7B-Instruct'] as const;

/**
 * Client → server. "VLCache: Download Model…": fetches a Qwen2-VL / Qwen2.5-VL checkpoint
 * from the Hugging Face hub (`endpoint`, else HF_ENDPOINT) into `<dest>/<name>`: only the files the
 * engine reads, each through a `.part` file resumed with HTTP Range, sha256-checked (LFS
 * files) or size-checked before it is renamed into place; an unsupported model_type is
 * refused before any weight is fetched; the folder is checked as a model load would.
 * Work-done progress: `percentage` and `file, MiB of MiB`. Cancellable: answers
 * RequestCancelled and keeps the .part files for the next request to resume. A failure is an
 * InternalError response whose message says what happened.
 */
export namespace DownloadModelRequest {
  export const method = 'vlcache/downloadModel' as const;
  export const type = new RequestType<DownloadModelParams, DownloadModelResult, void>(method);
}
