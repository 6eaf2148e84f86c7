/**
 * JPEG decoding through sharp (libjpeg-turbo's decoder with libjpeg's defaults: islow integer IDCT,
 * fancy chroma upsampling), bit-identical to Pillow for baseline and progressive files, every chroma
 * subsampling, greyscale, and CMYK/YCCK (see sharp-decode.ts). EXIF orientation is ignored, as it is
 * by Qwen2VLImageProcessorPil given `Image.open(path)`.
 */

import { decodeWithSharp } from './sharp-decode';
import type { DecodedPixels } from './types';

/**
 * Decodes a JPEG file into RGB8 (3 channels; JPEG has no alpha).
 * Precondition: the declared size has already passed the decompression-bomb guard.
 * @param components The frame's component count from its SOF header (4 = CMYK or YCCK).
 * @throws ImageError 'corrupt' when libjpeg rejects the data or the file is truncated.
 */
export function decodeJpeg(bytes: Uint8Array, label: string, maxPixels: number, components: number): Promise<DecodedPixels> {
  return decodeWithSharp(bytes, label, { formatName: 'JPEG', maxPixels, cmyk: components === 4 });
}
