/**
 * Qwen2-VL's `smart_resize`: the size an image is resampled to before patching. Ported from
 * transformers 5.17 src/transformers/models/qwen2_vl/image_processing_qwen2_vl.py:
 *
 *   if max(h, w) / min(h, w) > 200: raise
 *   h_bar = round(h / factor) * factor;  w_bar = round(w / factor) * factor
 *   if max_pixels and h_bar * w_bar > max_pixels:
 *       beta = sqrt(h * w / max_pixels)
 *       h_bar = max(factor, floor(h / beta / factor) * factor)   (same for w)
 *   elif min_pixels and h_bar * w_bar < min_pixels:
 *       beta = sqrt(min_pixels / (h * w))
 *       h_bar = ceil(h * beta / factor) * factor                 (same for w)
 *
 * Python's round() rounds halves to even (round(2.5) == 2), unlike Math.round, so 70 px with
 * factor 28 gives 56, not 84. The floating-point expressions keep Python's evaluation order, and
 * JS numbers are the same IEEE doubles, so every intermediate matches bit for bit. Unlike the
 * 4.x version there is no "side < factor" error: a 10 px side rounds to 0 and the min_pixels
 * branch scales it up.
 */

import { ImageError } from './errors';

/** Qwen2-VL's limit on max(h, w) / min(h, w). */
export const MAX_ASPECT_RATIO = 200;

/** Which rule fixed the size: plain rounding, the max_pixels cap, or the min_pixels floor. */
export type ResizeRule = 'rounded' | 'max-pixels' | 'min-pixels';

export interface ResizePlan {
  readonly height: number;
  readonly width: number;
  readonly rule: ResizeRule;
}

/**
 * Returns [resizedHeight, resizedWidth], both multiples of `factor`.
 * @throws ImageError 'empty' for a zero side, 'aspect-ratio' beyond 200:1.
 */
export function smartResize(
  height: number,
  width: number,
  factor = 28,
  minPixels = 56 * 56,
  maxPixels = 14 * 14 * 4 * 1280,
): [number, number] {
  const plan = planSmartResize(height, width, factor, minPixels, maxPixels);
  return [plan.height, plan.width];
}

/**
 * smartResize, also saying which rule decided the size (preprocess reports 'max-pixels' as
 * "downscaled").
 * Precondition: height, width and factor are non-negative integers.
 * @throws ImageError 'empty' for a zero side, 'aspect-ratio' beyond 200:1.
 */
export function planSmartResize(
  height: number,
  width: number,
  factor: number,
  minPixels: number,
  maxPixels: number,
): ResizePlan {
  if (height === 0 || width === 0) {
    // Python would raise ZeroDivisionError here.
    throw new ImageError('empty', `The image is ${width}x${height} pixels; it has no pixels to show the model.`);
  }
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > MAX_ASPECT_RATIO) {
    throw new ImageError(
      'aspect-ratio',
      `The image is ${width}x${height} pixels, an aspect ratio of ${ratio.toFixed(1)}:1; Qwen2-VL accepts at ` +
        `most ${MAX_ASPECT_RATIO}:1. Crop it into parts or pad it to a less extreme shape.`,
    );
  }
  let hBar = roundHalfEven(height / factor) * factor;
  let wBar = roundHalfEven(width / factor) * factor;
  if (maxPixels && hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
    return { height: hBar, width: wBar, rule: 'max-pixels' };
  }
  if (minPixels && hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
    return { height: hBar, width: wBar, rule: 'min-pixels' };
  }
  return { height: hBar, width: wBar, rule: 'rounded' };
}

/**
 * Python 3's round(x) for a double: to the nearest integer, halves to the even neighbour.
 * `x - floor(x)` is exact for |x| < 2^52, so the comparison with 0.5 is exact too.
 */
export function roundHalfEven(x: number): number {
  const lower = Math.floor(x);
  const frac = x - lower;
  if (frac > 0.5) return lower + 1;
  if (frac < 0.5) return lower;
  return lower % 2 === 0 ? lower : lower + 1;
}
