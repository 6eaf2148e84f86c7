/**
 * Error codes of the vlcache/* messages, in their own range (1000-1099), clear of
 * JSON-RPC's (-32768..-32000) and LSP's (-32899..-32800) reserved ranges.
 * A cancelled request answers with LSP's own `RequestCancelled` (-32800).
 */
export namespace ErrorCodes {
  /** An image path or URI resolves outside every workspace folder. Data: {@link PathErrorData}. */
  export const PathOutsideWorkspace = 1001;
  /** The image file is missing, unreadable, or not a decodable image. Data: {@link PathErrorData}. */
  export const InvalidImage = 1002;
  /** The prompt does not fit the model's context. Data: {@link ContextExceededData}. */
  export const ContextExceeded = 1003;
  /** The model could not be loaded (missing files, unsupported model, no device). */
  export const ModelLoadFailed = 1004;
  /** The parameters are malformed (e.g. no question). */
  export const InvalidParams = 1005;
  /** The server is shutting down and takes no more work. */
  export const ShuttingDown = 1006;
  /** The device ran out of memory during the request; the daemon, the model and the cache are as they were. */
  export const OutOfMemory = 1007;
}

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface PathErrorData {
  /** The path or URI as the client sent it. */
  path: string;
  /** The resolved absolute path, when it could be resolved. */
  resolved?: string;
}

export interface ContextExceededData {
  nPromptTokens: number;
  nCtx: number;
}
