/**
 * Hover and explain-result thumbnails, made in an image worker (engine/image/isolate.ts) so that
 * decoding a large or hostile file never blocks the daemon, within a short time budget: a hover
 * that cannot show its image quickly says so instead.
 */
import { imageWorkers } from '../engine/image/isolate';
import { THUMBNAIL_SIDE, type Thumbnail } from '../engine/image/thumbnail';

export { THUMBNAIL_SIDE, type Thumbnail };

/** Time budget of one thumbnail, ms. */
export const THUMBNAIL_TIMEOUT_MS = 10_000;

/**
 * A PNG of at most `side` px on the long side, transparency over white, never enlarged.
 * @param name How the image is named in error messages.
 * @throws ImageError when the bytes are not an image we decode, are too large, or take too long.
 */
export function makeThumbnail(bytes: Uint8Array, name: string, side = THUMBNAIL_SIDE): Promise<Thumbnail> {
  return imageWorkers().thumbnail(bytes, name, side, THUMBNAIL_TIMEOUT_MS);
}

/**
 * Starts an image worker now unless one runs, so the first hover's thumbnail does not pay for its start (a thread,
 * the decoders, sharp: ~100 ms of the hover's budget). An idle worker never keeps the process alive.
 */
export function warmThumbnails(): void {
  imageWorkers().warm();
}
