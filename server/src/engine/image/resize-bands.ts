/**
 * One resize as a job in a WebAssembly memory (resize-kernel.ts), cut into horizontal bands of output rows that
 * can be computed independently, on any thread that has the memory (resize-threads.ts): band b is output rows
 * [y0, y1). Bands are contiguous, in order, and cover every output row once; every output row is computed
 * exactly as the whole resize computes it, so the result is byte-identical for any cut.
 *
 * Pillow's ImagingResample (src/libImaging/Resample.c), 8 bits per channel:
 * - Separable: a horizontal pass into intermediate uint8 rows, then a vertical pass; each pass rounds and clips
 *   to uint8, so the order matters for exactness. A pass whose size does not change is skipped.
 * - Every intermediate row is computed independently, so *where* it is kept changes speed, not results: a band
 *   keeps the rows its vertical taps read in a ring of kSize rows (output rows read monotonically increasing
 *   input rows, and none has more than kSize taps), and computes only the rows they read (Pillow's ybox cropping).
 * - RGBA input is read as RGB (alpha dropped, Pillow's `convert("RGB")`) by the horizontal pass; when the width
 *   does not change, an RGBA source still goes through it with one tap of weight 1.0 per pixel (an exact copy).
 *
 * Memory layout of a job (byte offsets, JobLayout; every region 16-byte aligned):
 *   hStarts [outWidth] i32, hWeights [outWidth, hTaps] i32, vWeights [outHeight, kSize] i32,
 *   src [inHeight, inWidth, channels] u8 (+ 16 bytes the horizontal kernel may read past the last pixel),
 *   out [outHeight, outWidth, 3] u8, and per band: kSize i32 row pointers, then a ring of kSize rows [outWidth, 3].
 */

import { computeTaps, fixTaps, type FixedTaps, PRECISION_BITS, type Taps } from './resize-taps';
import type { JobMemory, ResizeKernel } from './resize-kernel';

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

/** `nBands` contiguous bands of `outHeight` rows, sizes differing by at most one: [nBands, 2] (y0, y1). */
export function planBands(outHeight: number, nBands: number): Int32Array {
  if (!(Number.isInteger(nBands) && nBands >= 1 && nBands <= outHeight)) {
    throw new RangeError(`cannot cut ${outHeight} rows into ${nBands} bands`);
  }
  const bands = new Int32Array(nBands * 2);
  for (let b = 0; b < nBands; b++) {
    bands[b * 2] = Math.floor((b * outHeight) / nBands);
    bands[b * 2 + 1] = Math.floor(((b + 1) * outHeight) / nBands);
  }
  return bands;
}

/** Where a job's parts are in its memory (byte offsets). */
export interface JobLayout {
  /** Taps per pixel of the horizontal pass; 0 when there is none (same width, RGB source: rows are read as they are). */
  readonly hTaps: number;
  readonly hStarts: number;
  readonly hWeights: number;
  readonly vWeights: number;
  readonly src: number;
  readonly out: number;
  /** The first band's row pointers and ring; band b's are at scratch + b * scratchBytes. */
  readonly scratch: number;
  readonly scratchBytes: number;
  /** Bytes the job needs in all. */
  readonly bytes: number;
}

/** One banded resize as every thread sees it. */
export interface BandJob {
  readonly memory: JobMemory;
  readonly layout: JobLayout;
  readonly passes: BicubicPasses;
  /** Bytes per source pixel; 4: RGBA whose alpha is dropped. */
  readonly channels: 3 | 4;
  /** [nBands, 2]: y0 and y1 of each band (planBands). */
  readonly bands: Int32Array;
}

/** The taps of the horizontal pass the job runs: the resize's own, one of weight 1.0 per pixel to drop alpha, or none. */
function horizontalTaps(passes: BicubicPasses, channels: 3 | 4): FixedTaps | undefined {
  if (passes.h !== undefined || channels === 3) return passes.h;
  const starts = new Int32Array(passes.outWidth);
  for (let x = 0; x < starts.length; x++) starts[x] = x;
  return { n: 1, starts, weights: new Int32Array(passes.outWidth).fill(1 << PRECISION_BITS) };
}

const align = (n: number) => Math.ceil(n / 16) * 16;

/** Where everything of a resize cut into `nBands` bands goes in its memory. */
export function layoutJob(passes: BicubicPasses, channels: 3 | 4, nBands: number): JobLayout {
  const { inWidth, inHeight, outWidth, outHeight, v } = passes;
  const hTaps = passes.h?.n ?? (channels === 4 ? 1 : 0); // horizontalTaps' count, without building its tables
  const kSize = v?.kSize ?? 0;
  const outStride = outWidth * 3;
  let top = 0;
  const take = (bytes: number) => { const at = top; top += align(bytes); return at; };
  const hStarts = take(outWidth * 4);
  const hWeights = take(outWidth * hTaps * 4);
  const vWeights = take(outHeight * kSize * 4);
  const src = take(inHeight * inWidth * channels + 16);
  const out = take(outHeight * outStride);
  const scratchBytes = align(kSize * 4) + align(kSize * outStride);
  const scratch = take(nBands * scratchBytes);
  return { hTaps, hStarts, hWeights, vWeights, src, out, scratch, scratchBytes, bytes: top };
}

/** A job: `memory` (at least layout.bytes) receives the taps and the source ([inHeight, inWidth, channels]). */
export function prepareJob(
  memory: JobMemory, layout: JobLayout, passes: BicubicPasses, channels: 3 | 4, bands: Int32Array, src: Uint8Array,
): BandJob {
  const buffer = memory.buffer;
  const h = horizontalTaps(passes, channels);
  if (h !== undefined) {
    new Int32Array(buffer, layout.hStarts, h.starts.length).set(h.starts);
    new Int32Array(buffer, layout.hWeights, h.weights.length).set(h.weights);
  }
  if (passes.v !== undefined) new Int32Array(buffer, layout.vWeights, passes.v.weights.length).set(passes.v.weights);
  new Uint8Array(buffer, layout.src, src.length).set(src);
  return { memory, layout, passes, channels, bands };
}

/** Computes band `b` of `job` into its output with `kernel` (instantiated on job.memory, on the calling thread). */
export function computeBand(job: BandJob, b: number, kernel: ResizeKernel): void {
  const { layout: at, passes, channels } = job;
  const { inWidth, outWidth, v } = passes;
  const y0 = job.bands[b * 2]!;
  const y1 = job.bands[b * 2 + 1]!;
  const inStride = inWidth * channels;
  const outStride = outWidth * 3;
  const srcRow = (y: number) => at.src + y * inStride;
  const outRow = (y: number) => at.out + y * outStride;
  const horizontal = (y: number, dst: number) => kernel.hrow(srcRow(y), channels, at.hStarts, at.hWeights, at.hTaps, dst, outWidth);

  if (v === undefined) {
    // Same height: output row y is input row y, resampled (or copied).
    const bytes = new Uint8Array(job.memory.buffer);
    for (let y = y0; y < y1; y++) {
      if (at.hTaps === 0) bytes.copyWithin(outRow(y), srcRow(y), srcRow(y) + inStride);
      else horizontal(y, outRow(y));
    }
    return;
  }

  const ptrs = at.scratch + b * at.scratchBytes;
  const ring = ptrs + align(v.kSize * 4);
  const pointers = new Int32Array(job.memory.buffer, ptrs, v.kSize);
  const vertical = (yy: number, nTaps: number) => kernel.vrow(ptrs, at.vWeights + yy * v.kSize * 4, nTaps, outRow(yy), outStride);
  if (at.hTaps === 0) {
    // Vertical only, from RGB: the taps read the source rows in place.
    for (let yy = y0; yy < y1; yy++) {
      const yMin = v.bounds[yy * 2]!;
      const nTaps = v.bounds[yy * 2 + 1]!;
      for (let i = 0; i < nTaps; i++) pointers[i] = srcRow(yMin + i);
      vertical(yy, nTaps);
    }
    return;
  }
  // Both passes: input row y's horizontal pass lives in ring slot y % kSize.
  const slot = (y: number) => ring + (y % v.kSize) * outStride;
  let nextRow = v.bounds[y0 * 2]!; // the first input row the band's vertical taps read
  for (let yy = y0; yy < y1; yy++) {
    const yMin = v.bounds[yy * 2]!;
    const nTaps = v.bounds[yy * 2 + 1]!;
    for (; nextRow < yMin + nTaps; nextRow++) horizontal(nextRow, slot(nextRow));
    for (let i = 0; i < nTaps; i++) pointers[i] = slot(yMin + i);
    vertical(yy, nTaps);
  }
}

/** The job's output ([outHeight, outWidth, 3]) copied into the start of `into` when it is large enough, else a new buffer. */
export function copyOutput(job: BandJob, into?: ArrayBuffer): Uint8Array {
  const n = job.passes.outWidth * job.passes.outHeight * 3;
  const result = resultBytes(n, into);
  result.set(new Uint8Array(job.memory.buffer, job.layout.out, n));
  return result;
}

/**
 * `bytes` bytes for a result: the start of `into` when it is large enough (a kept buffer whose pages are already
 * touched, pixel-buffers.ts), else a new buffer.
 */
export function resultBytes(bytes: number, into?: ArrayBuffer): Uint8Array {
  return into !== undefined && into.byteLength >= bytes ? new Uint8Array(into, 0, bytes) : new Uint8Array(bytes);
}
