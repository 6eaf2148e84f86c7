/**
 * JPEG decoding through jpeg-js (pure JavaScript, baseline and progressive).
 *
 * NOTE: this is the one decoder that is not bit-identical to Hugging Face. Pillow decodes with
 * libjpeg-turbo (integer IDCT, "fancy" chroma upsampling); jpeg-js uses its own IDCT and
 * upsampling, so pixels typically differ by a level or two. Parity tests must use PNG input.
 * EXIF orientation is ignored, as it is by Qwen2VLImageProcessorPil given `Image.open(path)`.
 */

import * as jpeg from 'jpeg-js';

import { corruptError } from './errors';
import type { RgbaImage } from './types';

/**
 * Decodes a JPEG file into RGBA8 (alpha always 255).
 * Precondition: the declared size has already passed the decompression-bomb guard.
 * @param maxPixels The same limit, handed on so jpeg-js's own guard never fires first.
 * @throws ImageError 'corrupt' when jpeg-js rejects the data.
 */
export function decodeJpeg(bytes: Uint8Array, label: string, maxPixels: number): RgbaImage {
  try {
    const decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      // jpeg-js refuses images above maxResolutionInMP megapixels and decodes needing more than
      // maxMemoryUsageInMB; ours is the only size policy, so both are set above it.
      maxResolutionInMP: Math.ceil(maxPixels / 1e6) + 1,
      maxMemoryUsageInMB: Math.max(512, Math.ceil((maxPixels * 8) / 2 ** 20)),
    });
    return { width: decoded.width, height: decoded.height, data: decoded.data };
  } catch (e) {
    throw corruptError(label, 'JPEG', e);
  }
}
