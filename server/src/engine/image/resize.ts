/**
 * Pillow-exact BICUBIC resampling of 8-bit RGB, i.e. `Image.resize((w, h), Image.BICUBIC)` as
 * Qwen2VLImageProcessorPil calls it (no box, no reducing_gap). Written from the algorithm in
 * Pillow's src/libImaging/Resample.c and src/PIL/Image.py (Pillow 12.3):
 *
 * - Separable: a horizontal pass into an intermediate uint8 image, then a vertical pass. Each
 *   pass rounds and clips to uint8, so the order matters for exactness.
 * - Per output sample `xx`, the kernel is centred at `center = (xx + 0.5) * scale` with
 *   `scale = inSize / outSize`; when shrinking, the kernel is stretched by `scale` (support
 *   2 * scale input pixels), when enlarging it is not (filterscale = max(scale, 1)).
 * - Taps cover input indices [trunc(center - support + 0.5), trunc(center + support + 0.5)),
 *   clipped to the image; weights are bicubic(a = -0.5) of
 *   `(i - center + 0.5) / filterscale`, divided by their sum.
 * - Weights become fixed point with PRECISION_BITS = 32 - 8 - 2 = 22 fraction bits, rounding half
 *   away from zero and truncating; accumulators start at 1 << 21 (for rounding) and the result is
 *   `acc >> 22` clipped to [0, 255].
 * - Only the rows the vertical pass reads go through the horizontal pass; every row is computed
 *   independently, so this changes speed, not results.
 * - An unchanged size returns a copy (Image.resize's early return).
 * - Pillow >= 12.2 resizes an image more than 100 times taller than wide vertically FIRST when
 *   its height shrinks (Image.resize: `self.size[1] > self.size[0] * 100 and size[1] < self.size[1]`).
 *   Older Pillow always goes horizontal first; the two can differ by one level on such images.
 *
 * All arithmetic is exact in JS numbers: the weights are computed in the same IEEE double
 * operations in the same order as the C code, and the integer accumulators stay below 2^31 as
 * in Pillow (which relies on that for its int32 sums).
 */

import type { RgbImage } from './types';

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** Bicubic filter support in input pixels before stretching. */
const BICUBIC_SUPPORT = 2.0;

/** Keys' cubic convolution kernel with a = -0.5, as in Pillow's bicubic_filter. */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/** Fixed-point taps for one axis. */
interface Taps {
  /** Taps per output sample (unused ones are zero). */
  readonly kSize: number;
  /** [outSize, 2]: first input index and number of taps for each output sample. */
  readonly bounds: Int32Array;
  /** [outSize, kSize]: weights scaled by 2^22. */
  readonly weights: Int32Array;
}

/** Pillow's precompute_coeffs followed by normalize_coeffs_8bpc, for the box [0, inSize). */
function computeTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = scale < 1.0 ? 1.0 : scale;
  const support = BICUBIC_SUPPORT * filterScale;
  const kSize = Math.ceil(support) * 2 + 1;
  const invFilterScale = 1.0 / filterScale;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * kSize);
  const k = new Float64Array(kSize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // Math.trunc matches C's (int) cast; negative values are clipped to 0 right after anyway.
    const xMin = Math.max(0, Math.trunc(center - support + 0.5));
    const xMax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xMin;
    let sum = 0.0;
    for (let x = 0; x < xMax; x++) {
      const w = bicubic((x + xMin - center + 0.5) * invFilterScale);
      k[x] = w;
      sum += w;
    }
    for (let x = 0; x < xMax; x++) {
      const w = sum !== 0.0 ? k[x]! / sum : k[x]!;
      weights[xx * kSize + x] = Math.trunc(w < 0 ? -0.5 + w * ONE : 0.5 + w * ONE);
    }
    bounds[xx * 2] = xMin;
    bounds[xx * 2 + 1] = xMax;
  }
  return { kSize, bounds, weights };
}

/** Pillow's clip8: the accumulator's integer part, clipped to a byte. */
function clip8(acc: number): number {
  const v = Math.floor(acc / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Horizontal pass over input rows [y0, y0 + nRows) of `src` ([height, inWidth, 3]).
 * Returns [nRows, outWidth, 3].
 */
function resampleRows(src: Uint8Array, inWidth: number, y0: number, nRows: number, taps: Taps, outWidth: number): Uint8Array {
  const out = new Uint8Array(nRows * outWidth * 3);
  const { kSize, bounds, weights } = taps;
  for (let y = 0; y < nRows; y++) {
    const rowIn = (y0 + y) * inWidth * 3;
    const rowOut = y * outWidth * 3;
    for (let xx = 0; xx < outWidth; xx++) {
      const nTaps = bounds[xx * 2 + 1]!;
      const kOff = xx * kSize;
      let p = rowIn + bounds[xx * 2]! * 3;
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let i = 0; i < nTaps; i++, p += 3) {
        const w = weights[kOff + i]!;
        r += src[p]! * w;
        g += src[p + 1]! * w;
        b += src[p + 2]! * w;
      }
      const q = rowOut + xx * 3;
      out[q] = clip8(r);
      out[q + 1] = clip8(g);
      out[q + 2] = clip8(b);
    }
  }
  return out;
}

/**
 * Vertical pass: `src` is [inHeight, width, 3] and `taps` index its rows after subtracting
 * `rowOffset` (the first row the horizontal pass kept). Returns [outHeight, width, 3].
 */
function resampleColumns(src: Uint8Array, width: number, rowOffset: number, taps: Taps, outHeight: number): Uint8Array {
  const out = new Uint8Array(outHeight * width * 3);
  const { kSize, bounds, weights } = taps;
  const stride = width * 3;
  for (let yy = 0; yy < outHeight; yy++) {
    const yMin = bounds[yy * 2]! - rowOffset;
    const nTaps = bounds[yy * 2 + 1]!;
    const kOff = yy * kSize;
    const rowOut = yy * stride;
    for (let c = 0; c < stride; c++) {
      let acc = HALF;
      let p = yMin * stride + c;
      for (let i = 0; i < nTaps; i++, p += stride) acc += src[p]! * weights[kOff + i]!;
      out[rowOut + c] = clip8(acc);
    }
  }
  return out;
}

/**
 * Resizes `image` ([height, width, 3]) to outWidth x outHeight exactly as Pillow's BICUBIC.
 * Precondition: outWidth and outHeight are positive integers.
 */
export function resizeBicubic(image: RgbImage, outWidth: number, outHeight: number): RgbImage {
  const { width: inWidth, height: inHeight, data } = image;
  if (inWidth === outWidth && inHeight === outHeight) {
    return { width: inWidth, height: inHeight, data: data.slice() };
  }
  if (inHeight > inWidth * 100 && outHeight < inHeight) {
    // Pillow >= 12.2: two separate resizes, vertical then horizontal.
    const tall = resizeAxes(image, inWidth, outHeight);
    return resizeAxes(tall, outWidth, outHeight);
  }
  return resizeAxes(image, outWidth, outHeight);
}

/** One ImagingResample call: horizontal pass if the width changes, then vertical if the height does. */
function resizeAxes(image: RgbImage, outWidth: number, outHeight: number): RgbImage {
  const { width: inWidth, height: inHeight } = image;
  const needHorizontal = outWidth !== inWidth;
  const needVertical = outHeight !== inHeight;
  if (!needHorizontal && !needVertical) return { width: inWidth, height: inHeight, data: image.data.slice() };

  const vTaps = needVertical ? computeTaps(inHeight, outHeight) : undefined;
  let data = image.data;
  let rowOffset = 0;
  if (needHorizontal) {
    // Rows [first, last) are all the vertical pass will read.
    let first = 0;
    let last = inHeight;
    if (vTaps !== undefined) {
      first = vTaps.bounds[0]!;
      last = vTaps.bounds[(outHeight - 1) * 2]! + vTaps.bounds[(outHeight - 1) * 2 + 1]!;
    }
    data = resampleRows(data, inWidth, first, last - first, computeTaps(inWidth, outWidth), outWidth);
    rowOffset = first;
  }
  if (vTaps !== undefined) {
    data = resampleColumns(data, outWidth, rowOffset, vTaps, outHeight);
  }
  return { width: outWidth, height: outHeight, data };
}
