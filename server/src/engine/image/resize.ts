/**
 * Pillow-exact BICUBIC resampling of 8-bit RGB, i.e. `Image.resize((w, h), Image.BICUBIC)` as
 * Qwen2VLImageProcessorPil calls it (no box, no reducing_gap). Written from the algorithm in
 * Pillow's src/libImaging/Resample.c and src/PIL/Image.py (Pillow 12.3); the taps are in
 * resize-taps.ts.
 *
 * - Separable: a horizontal pass into an intermediate uint8 image, then a vertical pass. Each
 *   pass rounds and clips to uint8 (`acc >> 22` clipped to [0, 255], accumulators starting at
 *   1 << 21), so the order matters for exactness.
 * - A pass whose size does not change is skipped, as in ImagingResample.
 * - Every intermediate row is computed independently, so *where* it is kept changes speed, not
 *   results: here the horizontal pass writes into a ring of `kSize` rows that the vertical pass
 *   reads as soon as its taps are there (output rows read monotonically increasing input rows,
 *   and no output row has more than kSize taps), instead of a whole intermediate image. Only
 *   the rows the vertical pass reads are computed (Pillow's ybox cropping).
 * - An unchanged size returns a copy (Image.resize's early return).
 * - Pillow >= 12.2 resizes an image more than 100 times taller than wide vertically FIRST when
 *   its height shrinks (Image.resize: `self.size[1] > self.size[0] * 100 and size[1] < self.size[1]`).
 *   Older Pillow always goes horizontal first; the two can differ by one level on such images.
 *
 * Arithmetic is int32 as in Pillow's C (`| 0`, `>>`): the sums stay below 2^31 there and here
 * (Pillow relies on that), and a Uint8ClampedArray store does the clip to [0, 255]. Integer
 * addition is associative, so unrolled loops and zero-weight padding (fixTaps) give the same sums.
 * The common tap counts have unrolled loops: 4 (every enlargement), 5 (shrinking by up to 1.25x,
 * e.g. a 3840x2160 screenshot to 3836x2156).
 */

import { computeTaps, type FixedTaps, fixTaps, HALF as TAPS_HALF, PRECISION_BITS as TAPS_PRECISION_BITS } from './resize-taps';
import type { RgbImage } from './types';

// Module-local copies: an imported binding can compile to a getter call (CommonJS output), which
// the inner loops below would pay per sample.
const PRECISION_BITS = TAPS_PRECISION_BITS;
const HALF = TAPS_HALF;

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
  const { width: inWidth, height: inHeight, data: src } = image;
  if (outWidth === inWidth && outHeight === inHeight) return { width: inWidth, height: inHeight, data: src.slice() };
  const out = new Uint8Array(outHeight * outWidth * 3);
  const outClamped = new Uint8ClampedArray(out.buffer);
  const inStride = inWidth * 3;
  const outStride = outWidth * 3;

  if (outHeight === inHeight) {
    const hTaps = fixTaps(computeTaps(inWidth, outWidth), inWidth, outWidth);
    for (let y = 0; y < inHeight; y++) resampleRow(src, y * inStride, hTaps, outClamped, y * outStride, outWidth);
    return { width: outWidth, height: outHeight, data: out };
  }

  const vTaps = computeTaps(inHeight, outHeight);
  const rowOffsets = new Int32Array(vTaps.kSize);
  if (outWidth === inWidth) {
    // Vertical only: the taps read the source rows in place.
    for (let yy = 0; yy < outHeight; yy++) {
      const yMin = vTaps.bounds[yy * 2]!;
      const nTaps = vTaps.bounds[yy * 2 + 1]!;
      for (let i = 0; i < nTaps; i++) rowOffsets[i] = (yMin + i) * inStride;
      resampleColumn(src, rowOffsets, nTaps, vTaps.weights, yy * vTaps.kSize, outClamped, yy * outStride, outStride);
    }
    return { width: outWidth, height: outHeight, data: out };
  }

  // Both passes: horizontal rows go into a ring of kSize rows; input row y lives in slot y % kSize.
  const hTaps = fixTaps(computeTaps(inWidth, outWidth), inWidth, outWidth);
  const ringRows = vTaps.kSize;
  const ring = new Uint8Array(ringRows * outStride);
  const ringClamped = new Uint8ClampedArray(ring.buffer);
  let nextRow = vTaps.bounds[0]!; // the first input row the vertical pass reads
  for (let yy = 0; yy < outHeight; yy++) {
    const yMin = vTaps.bounds[yy * 2]!;
    const nTaps = vTaps.bounds[yy * 2 + 1]!;
    for (; nextRow < yMin + nTaps; nextRow++) {
      resampleRow(src, nextRow * inStride, hTaps, ringClamped, (nextRow % ringRows) * outStride, outWidth);
    }
    for (let i = 0; i < nTaps; i++) rowOffsets[i] = ((yMin + i) % ringRows) * outStride;
    resampleColumn(ring, rowOffsets, nTaps, vTaps.weights, yy * vTaps.kSize, outClamped, yy * outStride, outStride);
  }
  return { width: outWidth, height: outHeight, data: out };
}

/** Horizontal pass over one row: `src` [inWidth, 3] from `inOff` to `dst` [outWidth, 3] from `outOff`. */
function resampleRow(src: Uint8Array, inOff: number, taps: FixedTaps, dst: Uint8ClampedArray, outOff: number, outWidth: number): void {
  if (taps.n === 4) resampleRow4(src, inOff, taps.starts, taps.weights, dst, outOff, outWidth);
  else if (taps.n === 5) resampleRow5(src, inOff, taps.starts, taps.weights, dst, outOff, outWidth);
  else resampleRowN(src, inOff, taps, dst, outOff, outWidth);
}

function resampleRow4(src: Uint8Array, inOff: number, starts: Int32Array, weights: Int32Array, dst: Uint8ClampedArray, outOff: number, outWidth: number): void {
  for (let xx = 0, q = outOff, k = 0; xx < outWidth; xx++, q += 3, k += 4) {
    const p = inOff + starts[xx]! * 3;
    const w0 = weights[k]!, w1 = weights[k + 1]!, w2 = weights[k + 2]!, w3 = weights[k + 3]!;
    dst[q] = (HALF + src[p]! * w0 + src[p + 3]! * w1 + src[p + 6]! * w2 + src[p + 9]! * w3) >> PRECISION_BITS;
    dst[q + 1] = (HALF + src[p + 1]! * w0 + src[p + 4]! * w1 + src[p + 7]! * w2 + src[p + 10]! * w3) >> PRECISION_BITS;
    dst[q + 2] = (HALF + src[p + 2]! * w0 + src[p + 5]! * w1 + src[p + 8]! * w2 + src[p + 11]! * w3) >> PRECISION_BITS;
  }
}

function resampleRow5(src: Uint8Array, inOff: number, starts: Int32Array, weights: Int32Array, dst: Uint8ClampedArray, outOff: number, outWidth: number): void {
  for (let xx = 0, q = outOff, k = 0; xx < outWidth; xx++, q += 3, k += 5) {
    const p = inOff + starts[xx]! * 3;
    const w0 = weights[k]!, w1 = weights[k + 1]!, w2 = weights[k + 2]!, w3 = weights[k + 3]!, w4 = weights[k + 4]!;
    dst[q] = (HALF + src[p]! * w0 + src[p + 3]! * w1 + src[p + 6]! * w2 + src[p + 9]! * w3 + src[p + 12]! * w4) >> PRECISION_BITS;
    dst[q + 1] = (HALF + src[p + 1]! * w0 + src[p + 4]! * w1 + src[p + 7]! * w2 + src[p + 10]! * w3 + src[p + 13]! * w4) >> PRECISION_BITS;
    dst[q + 2] = (HALF + src[p + 2]! * w0 + src[p + 5]! * w1 + src[p + 8]! * w2 + src[p + 11]! * w3 + src[p + 14]! * w4) >> PRECISION_BITS;
  }
}

/** Any tap count: four taps per step, then the remaining zero to three. */
function resampleRowN(src: Uint8Array, inOff: number, taps: FixedTaps, dst: Uint8ClampedArray, outOff: number, outWidth: number): void {
  const { n, starts, weights } = taps;
  const n4 = n & ~3;
  for (let xx = 0, q = outOff, kOff = 0; xx < outWidth; xx++, q += 3, kOff += n) {
    let p = inOff + starts[xx]! * 3;
    let r = HALF;
    let g = HALF;
    let b = HALF;
    let k = kOff;
    for (const k4 = kOff + n4; k < k4; k += 4, p += 12) {
      const w0 = weights[k]!, w1 = weights[k + 1]!, w2 = weights[k + 2]!, w3 = weights[k + 3]!;
      r = (r + src[p]! * w0 + src[p + 3]! * w1 + src[p + 6]! * w2 + src[p + 9]! * w3) | 0;
      g = (g + src[p + 1]! * w0 + src[p + 4]! * w1 + src[p + 7]! * w2 + src[p + 10]! * w3) | 0;
      b = (b + src[p + 2]! * w0 + src[p + 5]! * w1 + src[p + 8]! * w2 + src[p + 11]! * w3) | 0;
    }
    for (const kEnd = kOff + n; k < kEnd; k++, p += 3) {
      const w = weights[k]!;
      r = (r + src[p]! * w) | 0;
      g = (g + src[p + 1]! * w) | 0;
      b = (b + src[p + 2]! * w) | 0;
    }
    dst[q] = r >> PRECISION_BITS;
    dst[q + 1] = g >> PRECISION_BITS;
    dst[q + 2] = b >> PRECISION_BITS;
  }
}

/**
 * Vertical pass for one output row of `stride` samples: the input rows start at
 * `src[rowOffsets[i]]` (i < nTaps) with weights `weights[kOff + i]`; writes `dst[outOff ..]`.
 */
function resampleColumn(
  src: Uint8Array, rowOffsets: Int32Array, nTaps: number, weights: Int32Array, kOff: number,
  dst: Uint8ClampedArray, outOff: number, stride: number,
): void {
  if (nTaps === 4) {
    const o0 = rowOffsets[0]!, o1 = rowOffsets[1]!, o2 = rowOffsets[2]!, o3 = rowOffsets[3]!;
    const w0 = weights[kOff]!, w1 = weights[kOff + 1]!, w2 = weights[kOff + 2]!, w3 = weights[kOff + 3]!;
    for (let c = 0; c < stride; c++) {
      dst[outOff + c] = (HALF + src[o0 + c]! * w0 + src[o1 + c]! * w1 + src[o2 + c]! * w2 + src[o3 + c]! * w3) >> PRECISION_BITS;
    }
  } else if (nTaps === 5) {
    const o0 = rowOffsets[0]!, o1 = rowOffsets[1]!, o2 = rowOffsets[2]!, o3 = rowOffsets[3]!, o4 = rowOffsets[4]!;
    const w0 = weights[kOff]!, w1 = weights[kOff + 1]!, w2 = weights[kOff + 2]!, w3 = weights[kOff + 3]!, w4 = weights[kOff + 4]!;
    for (let c = 0; c < stride; c++) {
      dst[outOff + c] = (HALF + src[o0 + c]! * w0 + src[o1 + c]! * w1 + src[o2 + c]! * w2 + src[o3 + c]! * w3 + src[o4 + c]! * w4) >> PRECISION_BITS;
    }
  } else {
    // Any tap count: whole rows at a time into int32 sums, four taps per sweep.
    const acc = accumulator(stride);
    acc.fill(HALF, 0, stride);
    let i = 0;
    for (; i + 4 <= nTaps; i += 4) {
      const o0 = rowOffsets[i]!, o1 = rowOffsets[i + 1]!, o2 = rowOffsets[i + 2]!, o3 = rowOffsets[i + 3]!;
      const w0 = weights[kOff + i]!, w1 = weights[kOff + i + 1]!, w2 = weights[kOff + i + 2]!, w3 = weights[kOff + i + 3]!;
      for (let c = 0; c < stride; c++) {
        acc[c] = acc[c]! + src[o0 + c]! * w0 + src[o1 + c]! * w1 + src[o2 + c]! * w2 + src[o3 + c]! * w3;
      }
    }
    for (; i < nTaps; i++) {
      const o = rowOffsets[i]!;
      const w = weights[kOff + i]!;
      for (let c = 0; c < stride; c++) acc[c] = acc[c]! + src[o + c]! * w;
    }
    for (let c = 0; c < stride; c++) dst[outOff + c] = acc[c]! >> PRECISION_BITS;
  }
}

let scratch = new Int32Array(0);

/** A reused int32 row of at least `length` sums (an Int32Array store wraps like C's int). */
function accumulator(length: number): Int32Array {
  if (scratch.length < length) scratch = new Int32Array(length);
  return scratch;
}
