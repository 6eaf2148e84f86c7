import { RequestType } from 'vscode-languageserver-protocol';

export type ClearCacheParams = Record<string, never>;

export interface ClearCacheResult {
  /** Entries removed from RAM and disk together. */
  nEntriesRemoved: number;
  bytesRemoved: number;
}

/**
 * Client → server. Empties the workspace cache (RAM and disk) on "Clear
 * Workspace Cache". Waits for the running request; queued ones see an empty cache.
 */
export namespace ClearCacheRequest {
  export const method = 'vlcache/clearCache' as const;
  export const type = new RequestType<ClearCacheParams, ClearCacheResult, void>(method);
}
