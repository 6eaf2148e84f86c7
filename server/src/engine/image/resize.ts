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
 *   results (resizeRowsInto keeps a ring of rows), and any band of output rows can be computed on
 *   its own from the input rows of its taps (inputRows): resize-parallel.ts splits a large resize
 *   into such bands on several threads.
 * - RGBA input is read as RGB (alpha dropped, Pillow's `convert("RGB")`) row by row, so a decoded
 *   screenshot needs no separate RGBA -> RGB pass.
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

import { computeTaps, type FixedTaps, fixTaps, HALF as TAPS_HALF, PRECISION_BITS as TAPS_PRECISION_BITS, type Taps } from './resize-taps';
import type { DecodedPixels, RgbImage } from './types';

// Module-local copies: an imported binding can compile to a getter call (CommonJS output), which
// the inner loops below would pay per sample.
const PRECISION_BITS = TAPS_PRECISION_BITS;
const HALF = TAPS_HALF;

/** An image to resize: RGB, or RGBA whose alpha is dropped (Pillow's `convert("RGB")`) as its rows are read. */
export type ResizeSource = RgbImage | DecodedPixels;

/** Samples per pixel of `image`: 3, or 4 for RGBA. */
export function sourceChannels(image: ResizeSource): 3 | 4 {
  return 'channels' in image ? image.channels : 3;
}

/**
 * Resizes `image` ([height, width, 3], or [height, width, 4] whose alpha is ignored) to outWidth x
 * outHeight exactly as Pillow's BICUBIC on the RGB image, into the start of `into` when it is large
 * enough. Precondition: outWidth and outHeight are positive integers.
 */
export function resizeBicubic(image: ResizeSource, outWidth: number, outHeight: number, into?: ArrayBuffer): RgbImage {
  if (isTallFirst(image.width, image.height, outHeight)) {
    // Pillow >= 12.2: two separate resizes, vertical then horizontal.
    const tall = resizeAxes(image, image.width, outHeight);
    return resizeAxes(tall, outWidth, outHeight, into);
  }
  return resizeAxes(image, outWidth, outHeight, into);
}

/**
 * `bytes` bytes for a result: the start of `into` when it is large enough (a kept buffer whose pages
 * are already touched, pixel-buffers.ts), else a new buffer.
 */
export function resultBytes(bytes: number, into?: ArrayBuffer): Uint8Array {
  return into !== undefined && into.byteLength >= bytes ? new Uint8Array(into, 0, bytes) : new Uint8Array(bytes);
}

/** True when Pillow >= 12.2 resizes vertically first (an image more than 100x taller than wide, shrinking in height). */
export function isTallFirst(inWidth: number, inHeight: number, outHeight: number): boolean {
  return inHeight > inWidth * 100 && outHeight < inHeight;
}

/** One ImagingResample call: horizontal pass if the width changes, then vertical if the height does. */
function resizeAxes(image: ResizeSource, outWidth: number, outHeight: number, into?: ArrayBuffer): RgbImage {
  const passes = bicubicPasses(image.width, image.height, outWidth, outHeight);
  const out = resultBytes(outHeight * outWidth * 3, into);
  resizeRowsInto(image.data, sourceChannels(image), passes, 0, 0, outHeight, new Uint8ClampedArray(out.buffer));
  return { width: outWidth, height: outHeight, data: out };
}

/** The passes of one ImagingResample call and their taps; a pass whose size does not change is skipped. */
export interface BicubicPasses {
  readonly inWidth: number;
  readonly inHeight: number;
  readonly outWidth: number;
  readonly outHeight: number;
  /** Horizontal taps, widened to a fixed count; undefined when the width does not change. */
  readonly h: FixedTaps | undefined;
  /** Vertical taps; undefined when the height does not change. */
  readonly v: Taps | undefined;
}

export function bicubicPasses(inWidth: number, inHeight: number, outWidth: number, outHeight: number): BicubicPasses {
  return {
    inWidth, inHeight, outWidth, outHeight,
    h: outWidth === inWidth ? undefined : fixTaps(computeTaps(inWidth, outWidth), inWidth, outWidth),
    v: outHeight === inHeight ? undefined : computeTaps(inHeight, outHeight),
  };
}

/**
 * The input rows [rowStart, rowEnd) that output rows [y0, y1) read: the union of their vertical
 * taps (the rows themselves when the height does not change). Precondition: 0 <= y0 < y1 <= outHeight.
 */
export function inputRows(passes: BicubicPasses, y0: number, y1: number): [number, number] {
  const v = passes.v;
  if (v === undefined) return [y0, y1];
  let rowStart = passes.inHeight;
  let rowEnd = 0;
  for (let yy = y0; yy < y1; yy++) {
    const yMin = v.bounds[yy * 2]!;
    rowStart = Math.min(rowStart, yMin);
    rowEnd = Math.max(rowEnd, yMin + v.bounds[yy * 2 + 1]!);
  }
  return [rowStart, rowEnd];
}

/**
 * Output rows [y0, y1) of a resize, each exactly the row the whole resize computes (every
 * intermediate row is computed independently, so where a band starts changes nothing).
 * - `src` holds input rows from `rowStart` on: [nRows, inWidth, channels] with channels 4 read as RGB;
 *   it must hold every row of inputRows(passes, y0, y1).
 * - `dst` receives [y1 - y0, outWidth, 3] from its index 0.
 * Every row is computed once per call: the horizontal pass writes into a ring of kSize rows that
 * the vertical pass reads as soon as its taps are there (output rows read monotonically
 * increasing input rows, and no output row has more than kSize taps), instead of a whole
 * intermediate image; only the rows the vertical pass reads are computed (Pillow's ybox cropping).
 */
export function resizeRowsInto(
  src: Uint8Array, channels: 3 | 4, passes: BicubicPasses, rowStart: number, y0: number, y1: number, dst: Uint8ClampedArray,
): void {
  const { inWidth, outWidth, h, v } = passes;
  const inStride = inWidth * channels;
  const outStride = outWidth * 3;
  const rowOp = (srcOff: number, to: Uint8ClampedArray, toOff: number) => {
    if (h !== undefined) resampleRow(src, srcOff, channels, h, to, toOff, outWidth);
    else dropAlphaRow(src, srcOff, to, toOff, inWidth);
  };

  if (v === undefined) {
    // Same height: output row y is input row y, resampled (or its RGB copied).
    for (let y = y0; y < y1; y++) {
      const srcOff = (y - rowStart) * inStride;
      if (h === undefined && channels === 3) dst.set(src.subarray(srcOff, srcOff + inStride), (y - y0) * outStride);
      else rowOp(srcOff, dst, (y - y0) * outStride);
    }
    return;
  }

  const rowOffsets = new Int32Array(v.kSize);
  if (h === undefined && channels === 3) {
    // Vertical only: the taps read the source rows in place.
    for (let yy = y0; yy < y1; yy++) {
      const yMin = v.bounds[yy * 2]!;
      const nTaps = v.bounds[yy * 2 + 1]!;
      for (let i = 0; i < nTaps; i++) rowOffsets[i] = (yMin + i - rowStart) * inStride;
      resampleColumn(src, rowOffsets, nTaps, v.weights, yy * v.kSize, dst, (yy - y0) * outStride, outStride);
    }
    return;
  }

  // Both passes (or RGBA rows to make RGB first): intermediate rows go into a ring of kSize rows;
  // input row y lives in slot y % kSize.
  const ringRows = v.kSize;
  const ring = new Uint8Array(ringRows * outStride);
  const ringClamped = new Uint8ClampedArray(ring.buffer);
  let nextRow = v.bounds[y0 * 2]!; // the first input row the vertical pass reads
  for (let yy = y0; yy < y1; yy++) {
    const yMin = v.bounds[yy * 2]!;
    const nTaps = v.bounds[yy * 2 + 1]!;
    for (; nextRow < yMin + nTaps; nextRow++) rowOp((nextRow - rowStart) * inStride, ringClamped, (nextRow % ringRows) * outStride);
    for (let i = 0; i < nTaps; i++) rowOffsets[i] = ((yMin + i) % ringRows) * outStride;
    resampleColumn(ring, rowOffsets, nTaps, v.weights, yy * v.kSize, dst, (yy - y0) * outStride, outStride);
  }
}

/** One row's RGB samples: `src` [width, 4] from `inOff` to `dst` [width, 3] from `outOff`. */
function dropAlphaRow(src: Uint8Array, inOff: number, dst: Uint8ClampedArray, outOff: number, width: number): void {
  for (let x = 0, p = inOff, q = outOff; x < width; x++, p += 4, q += 3) {
    dst[q] = src[p]!;
    dst[q + 1] = src[p + 1]!;
    dst[q + 2] = src[p + 2]!;
  }
}

/**
 * Horizontal pass over one row: `src` [inWidth, ps] from `inOff` (ps = 3 or 4 samples per pixel,
 * the first three R, G, B) to `dst` [outWidth, 3] from `outOff`.
 */
function resampleRow(src: Uint8Array, inOff: number, ps: number, taps: FixedTaps, dst: Uint8ClampedArray, outOff: number, outWidth: number): void {
  if (taps.n === 4) resampleRow4(src, inOff, ps, taps.starts, taps.weights, dst, outOff, outWidth);
  else if (taps.n === 5) resampleRow5(src, inOff, ps, taps.starts, taps.weights, dst, outOff, outWidth);
  else resampleRowN(src, inOff, ps, taps, dst, outOff, outWidth);
}

function resampleRow4(src: Uint8Array, inOff: number, ps: number, starts: Int32Array, weights: Int32Array, dst: Uint8ClampedArray, outOff: number, outWidth: number): void {
  const s1 = ps, s2 = 2 * ps, s3 = 3 * ps;
  for (let xx = 0, q = outOff, k = 0; xx < outWidth; xx++, q += 3, k += 4) {
    const p = inOff + starts[xx]! * ps;
    const w0 = weights[k]!, w1 = weights[k + 1]!, w2 = weights[k + 2]!, w3 = weights[k + 3]!;
    dst[q] = (HALF + src[p]! * w0 + src[p + s1]! * w1 + src[p + s2]! * w2 + src[p + s3]! * w3) >> PRECISION_BITS;
    dst[q + 1] = (HALF + src[p + 1]! * w0 + src[p + 1 + s1]! * w1 + src[p + 1 + s2]! * w2 + src[p + 1 + s3]! * w3) >> PRECISION_BITS;
    dst[q + 2] = (HALF + src[p + 2]! * w0 + src[p + 2 + s1]! * w1 + src[p + 2 + s2]! * w2 + src[p + 2 + s3]! * w3) >> PRECISION_BITS;
  }
}

function resampleRow5(src: Uint8Array, inOff: number, ps: number, starts: Int32Array, weights: Int32Array, dst: Uint8ClampedArray, outOff: number, outWidth: number): void {
  const s1 = ps, s2 = 2 * ps, s3 = 3 * ps, s4 = 4 * ps;
  for (let xx = 0, q = outOff, k = 0; xx < outWidth; xx++, q += 3, k += 5) {
    const p = inOff + starts[xx]! * ps;
    const w0 = weights[k]!, w1 = weights[k + 1]!, w2 = weights[k + 2]!, w3 = weights[k + 3]!, w4 = weights[k + 4]!;
    dst[q] = (HALF + src[p]! * w0 + src[p + s1]! * w1 + src[p + s2]! * w2 + src[p + s3]! * w3 + src[p + s4]! * w4) >> PRECISION_BITS;
    dst[q + 1] = (HALF + src[p + 1]! * w0 + src[p + 1 + s1]! * w1 + src[p + 1 + s2]! * w2 + src[p + 1 + s3]! * w3 + src[p + 1 + s4]! * w4) >> PRECISION_BITS;
    dst[q + 2] = (HALF + src[p + 2]! * w0 + src[p + 2 + s1]! * w1 + src[p + 2 + s2]! * w2 + src[p + 2 + s3]! * w3 + src[p + 2 + s4]! * w4) >> PRECISION_BITS;
  }
}

/** Any tap count: four taps per step, then the remaining zero to three. */
function resampleRowN(src: Uint8Array, inOff: number, ps: number, taps: FixedTaps, dst: Uint8ClampedArray, outOff: number, outWidth: number): void {
  const { n, starts, weights } = taps;
  const n4 = n & ~3;
  const s1 = ps, s2 = 2 * ps, s3 = 3 * ps, s4 = 4 * ps;
  for (let xx = 0, q = outOff, kOff = 0; xx < outWidth; xx++, q += 3, kOff += n) {
    let p = inOff + starts[xx]! * ps;
    let r = HALF;
    let g = HALF;
    let b = HALF;
    let k = kOff;
    for (const k4 = kOff + n4; k < k4; k += 4, p += s4) {
      const w0 = weights[k]!, w1 = weights[k + 1]!, w2 = weights[k + 2]!, w3 = weights[k + 3]!;
      r = (r + src[p]! * w0 + src[p + s1]! * w1 + src[p + s2]! * w2 + src[p + s3]! * w3) | 0;
      g = (g + src[p + 1]! * w0 + src[p + 1 + s1]! * w1 + src[p + 1 + s2]! * w2 + src[p + 1 + s3]! * w3) | 0;
      b = (b + src[p + 2]! * w0 + src[p + 2 + s1]! * w1 + src[p + 2 + s2]! * w2 + src[p + 2 + s3]! * w3) | 0;
    }
    for (const kEnd = kOff + n; k < kEnd; k++, p += ps) {
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
