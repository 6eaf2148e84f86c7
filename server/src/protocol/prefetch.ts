import { RequestType } from 'vscode-languageserver-protocol';

export interface PrefetchParams {
  /** file:// URIs or workspace-relative paths of images to encode and prefill. */
  images: string[];
}

export interface PrefetchResult {
  /** Per image, in order: 'cached' when its encoder output and KV were already there. */
  images: { image: string; state: 'cached' | 'computed' }[];
  /** True when an interactive request or $/cancelRequest stopped it first. */
  cancelled: boolean;
}

/**
 * Client → server. Encodes and prefills images in the background (e.g. the images
 * of a Markdown file when it is opened) so a later ask reuses them. Runs only when
 * no interactive request waits.
 */
export namespace PrefetchRequest {
  export const method = 'vlcache/prefetch' as const;
  export const type = new RequestType<PrefetchParams, PrefetchResult, void>(method);
}
