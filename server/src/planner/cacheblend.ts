/**
 * CacheBlend's token selection (Yao et al., EuroSys'25; research brief
 * vlcache.md section 5.3), as pure functions over plain arrays.
 *
 * CacheBlend reuses a chunk's cached KV (here: an image's) in a new context and
 * recomputes only the rows whose KV deviates most from what a full prefill would
 * give ("HKVD" rows). The official code measures the deviation once, at check
 * layer 1, as the squared difference of the fresh and the cached V summed over
 * heads and head_dim (V has no rotary embedding, so no position correction is
 * needed), and recomputes the same rows at every layer. Layer 0 cannot be the
 * check layer for us: we store keys before RoPE, so a row's layer-0 K/V depend
 * only on its own embedding and never deviate.
 *
 * The engine side (running the two-layer probe, reading the cached entry) is
 * ReuseEngine.cacheblend in vlcache.ts.
 */

/** The request ratio when none is given: the paper's recommended minimum r* = 15%. */
export const CACHEBLEND_DEFAULT_RATIO = 0.15;

/** The decoder layer whose V deviation selects the rows (the official `check_layers = [1]`). */
export const CHECK_LAYER = 1;

/**
 * Rows of an nImg-row image that CacheBlend recomputes: ceil(ratio * nImg), at most
 * nImg, 0 for ratio <= 0 (so r = 0 is exactly naive, r = 1 exactly full). The
 * product is rounded to 1e-9 first so that e.g. 0.07 * 100 = 7.000000000000001
 * counts as 7 rows, not 8.
 */
export function blendCount(ratio: number, nImg: number): number {
  if (!(ratio > 0) || nImg <= 0) return 0;
  return Math.min(nImg, Math.ceil(Math.round(ratio * nImg * 1e9) / 1e9));
}

/**
 * Per-row deviation sum_i (a[aRows[j] * width + i] - b[bRows[j] * width + i])^2 for
 * j in [0, aRows.length), in float64. `a` and `b` are row-major [rows, width] (width =
 * numKvHeads * headDim for a layer's V); aRows[j] and bRows[j] name the same prompt
 * row in each (e.g. its index in the probe's present and in the cached image entry).
 */
export function rowDeviations(a: Float32Array, aRows: readonly number[], b: Float32Array, bRows: readonly number[],
  width: number): Float64Array {
  if (aRows.length !== bRows.length) throw new Error(`rowDeviations: ${aRows.length} rows against ${bRows.length}`);
  const out = new Float64Array(aRows.length);
  for (let j = 0; j < aRows.length; j++) {
    const ao = aRows[j] * width, bo = bRows[j] * width;
    if (ao < 0 || ao + width > a.length || bo < 0 || bo + width > b.length) throw new Error(`rowDeviations: row ${j} is out of range`);
    let s = 0;
    for (let i = 0; i < width; i++) {
      const d = a[ao + i] - b[bo + i];
      s += d * d;
    }
    out[j] = s;
  }
  return out;
}

/**
 * Indices of the `count` largest deviations, ascending. Ties go to the lower index,
 * so equal deviations (e.g. a cached entry identical to the fresh KV, all zeros)
 * select the leading rows deterministically. NaN (float16 overflow in a deviation)
 * ranks above everything: a row whose KV cannot be compared is recomputed.
 */
export function selectByDeviation(deviation: ArrayLike<number>, count: number): number[] {
  const n = deviation.length;
  const k = Math.max(0, Math.min(count, n));
  const key = (i: number) => (Number.isNaN(deviation[i]) ? Infinity : deviation[i]);
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((x, y) => key(y) - key(x) || x - y);
  return order.slice(0, k).sort((x, y) => x - y);
}
