/**
 * A resize cut into horizontal bands of output rows that can be computed independently (on
 * different threads, resize-threads.ts): band b is output rows [y0, y1), read from the input rows
 * of its vertical taps, [rowStart, rowEnd) = inputRows(passes, y0, y1) (resize.ts). Bands are
 * contiguous, in order, and cover every output row once; each computes exactly the rows the whole
 * resize computes, so the result is byte-identical for any cut.
 *
 * The input and output live in SharedArrayBuffers: every thread reads the one source and writes
 * its own rows of the one output, no copies per band. A band sees only its window of input rows
 * (a view of [rowStart, rowEnd)), so a window that misses a row its taps need reads `undefined`
 * and gives wrong bytes rather than silently right ones.
 */

import { type BicubicPasses, inputRows, resizeRowsInto } from './resize';

/** One banded resize as every thread sees it. */
export interface BandJob {
  /** The source, [inHeight, inWidth, channels] from byte 0 (channels 4: alpha is dropped). */
  readonly src: SharedArrayBuffer;
  readonly channels: 3 | 4;
  readonly passes: BicubicPasses;
  /** [nBands, 2]: y0 and y1 of each band (see planBands). */
  readonly bands: Int32Array;
  /** The output, [outHeight, outWidth, 3] from byte 0. */
  readonly out: SharedArrayBuffer;
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

/** Computes band `b` of `job` into job.out, on the calling thread. */
export function computeBand(job: BandJob, b: number): void {
  const { passes, channels } = job;
  const y0 = job.bands[b * 2]!;
  const y1 = job.bands[b * 2 + 1]!;
  const [rowStart, rowEnd] = inputRows(passes, y0, y1);
  const inStride = passes.inWidth * channels;
  const outStride = passes.outWidth * 3;
  const src = new Uint8Array(job.src, rowStart * inStride, (rowEnd - rowStart) * inStride);
  const dst = new Uint8ClampedArray(job.out, y0 * outStride, (y1 - y0) * outStride);
  resizeRowsInto(src, channels, passes, rowStart, y0, y1, dst);
}
