import { RequestType } from 'vscode-languageserver-protocol';

/**
 * The question every explanation answers (the hover, `vlcache/explain`), and the one the
 * extension's Explain Diagram command asks: one text, so they never drift apart.
 */
export const EXPLAIN_QUESTION = 'Explain this image briefly.';

export interface ExplainParams {
  /** A file:// URI or workspace-relative path; it must lie inside a workspace folder. */
  image: string;
  /** True: resolve when the explanation is done. False (default): answer at once, 'pending' while it is computed. */
  wait?: boolean;
}

export interface ExplainResult {
  /** 'pending': the explanation is being computed in the background; a `vlcache/status` `explained` follows. */
  state: 'ready' | 'pending';
  /** The short explanation (when ready). */
  text?: string;
  /** Time to first token of the run that made the explanation (when ready). */
  ttftMs?: number;
  /** That run reused cached encoder output, image KV or a prefix (when ready). */
  cacheHit?: boolean;
  /** A `data:image/png;base64,...` URI, at most 160 px on the long side. */
  thumbnail?: string;
  /** The image's own size in pixels. */
  width?: number;
  height?: number;
}

/**
 * Client → server. A short explanation of one image, cached per image content (the
 * SHA-256 of its bytes) in memory and in the cache directory. The hover uses the
 * same explanations; concurrent requests for one image compute it once, at
 * background priority (interactive asks go first). `$/cancelRequest` stops the
 * waiting, never the computation.
 */
export namespace ExplainRequest {
  export const method = 'vlcache/explain' as const;
  export const type = new RequestType<ExplainParams, ExplainResult, void>(method);
}
