/**
 * Pillow-exact BICUBIC resampling of 8-bit RGB, i.e. `Image.resize((w, h), Image.BICUBIC)` as
 * Qwen2VLImageProcessorPil calls it (no box, no reducing_gap). Written from the algorithm in
 * Pillow's src/libImaging/Resample.c and src/PIL/Image.py (Pillow 12.3): the taps are in
 * resize-taps.ts, the passes and their cut into bands in resize-bands.ts, the inner loops in
 * WebAssembly (resize-kernel.ts). This file resizes on the calling thread; resize-threads.ts on
 * several.
 *
 * - RGBA input is read as RGB (alpha dropped, Pillow's `convert("RGB")`), so a decoded screenshot
 *   needs no separate RGBA -> RGB pass.
 * - An unchanged size returns a copy (Image.resize's early return).
 * - Pillow >= 12.2 resizes an image more than 100 times taller than wide vertically FIRST when
 *   its height shrinks (Image.resize: `self.size[1] > self.size[0] * 100 and size[1] < self.size[1]`).
 *   Older Pillow always goes horizontal first; the two can differ by one level on such images.
 */

import { bicubicPasses, copyOutput, computeBand, layoutJob, planBands, prepareJob, resultBytes } from './resize-bands';
import { KeptMemory, kernelOn } from './resize-kernel';
import type { DecodedPixels, RgbImage } from './types';

/** An image to resize: RGB, or RGBA whose alpha is dropped (Pillow's `convert("RGB")`) as its rows are read. */
export type ResizeSource = RgbImage | DecodedPixels;

/** Samples per pixel of `image`: 3, or 4 for RGBA. */
export function sourceChannels(image: ResizeSource): 3 | 4 {
  return 'channels' in image ? image.channels : 3;
}

/**
 * Resizes `image` ([height, width, 3], or [height, width, 4] whose alpha is ignored) to outWidth x
 * outHeight exactly as Pillow's BICUBIC on the RGB image, into the start of `into` when it is large
 * enough (a kept buffer, pixel-buffers.ts), else into a new buffer.
 * Precondition: outWidth and outHeight are positive integers.
 * @throws RangeError when the resize needs more working memory than a WebAssembly memory holds.
 */
export function resizeBicubic(image: ResizeSource, outWidth: number, outHeight: number, into?: ArrayBuffer): RgbImage {
  if (isTallFirst(image.width, image.height, outHeight)) {
    // Pillow >= 12.2: two separate resizes, vertical then horizontal.
    const tall = resizeAxes(image, image.width, outHeight);
    return resizeAxes(tall, outWidth, outHeight, into);
  }
  return resizeAxes(image, outWidth, outHeight, into);
}

/** True when Pillow >= 12.2 resizes vertically first (an image more than 100x taller than wide, shrinking in height). */
export function isTallFirst(inWidth: number, inHeight: number, outHeight: number): boolean {
  return inHeight > inWidth * 100 && outHeight < inHeight;
}

/** This thread's job memory for one-thread resizes. */
const kept = new KeptMemory();

/** One ImagingResample call, as one band on this thread. */
function resizeAxes(image: ResizeSource, outWidth: number, outHeight: number, into?: ArrayBuffer): RgbImage {
  const channels = sourceChannels(image);
  if (channels === 3 && outWidth === image.width && outHeight === image.height) {
    // Image.resize's early return: a copy, made directly (no job memory, so one copy instead of three).
    const data = resultBytes(image.data.length, into);
    data.set(image.data);
    return { width: outWidth, height: outHeight, data };
  }
  const passes = bicubicPasses(image.width, image.height, outWidth, outHeight);
  const layout = layoutJob(passes, channels, 1);
  const memory = kept.take(layout.bytes);
  try {
    const job = prepareJob(memory, layout, passes, channels, planBands(outHeight, 1), image.data);
    computeBand(job, 0, kernelOn(memory));
    return { width: outWidth, height: outHeight, data: copyOutput(job, into) };
  } finally {
    kept.releaseLater();
  }
}
