/**
 * WebP decoding through sharp (libwebp 1.6, as in Pillow 12), bit-identical to Pillow for lossy,
 * lossless and alpha files and for frame 0 of an animation, which libwebp's animation decoder
 * composites onto a canvas of the declared size cleared to transparent black, as Pillow's does.
 * A file without the VP8X alpha flag comes back with 3 channels, like Pillow's mode "RGB".
 */

import { decodeWithSharp } from './sharp-decode';
import type { DecodedPixels } from './types';

/**
 * Decodes a WebP file (frame 0 of an animation) into RGB8 or straight-alpha RGBA8.
 * Precondition: the declared canvas and frame sizes have passed the decompression-bomb guard.
 * @throws ImageError 'corrupt' when libwebp rejects the data.
 */
export function decodeWebp(bytes: Uint8Array, label: string, maxPixels: number): Promise<DecodedPixels> {
  return decodeWithSharp(bytes, label, { formatName: 'WebP', maxPixels });
}
