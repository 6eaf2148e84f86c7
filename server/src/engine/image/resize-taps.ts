/**
 * Pillow's fixed-point BICUBIC filter taps for one axis (src/libImaging/Resample.c:
 * precompute_coeffs followed by normalize_coeffs_8bpc, for the box [0, inSize)).
 *
 * - Per output sample `xx`, the kernel is centred at `center = (xx + 0.5) * scale` with
 *   `scale = inSize / outSize`; when shrinking, the kernel is stretched by `scale` (support
 *   2 * scale input pixels), when enlarging it is not (filterscale = max(scale, 1)).
 * - Taps cover input indices [trunc(center - support + 0.5), trunc(center + support + 0.5)),
 *   clipped to the image; weights are bicubic(a = -0.5) of
 *   `(i - center + 0.5) / filterscale`, divided by their sum.
 * - Weights become fixed point with PRECISION_BITS = 32 - 8 - 2 = 22 fraction bits, rounding half
 *   away from zero and truncating.
 *
 * All arithmetic is exact in JS numbers: the weights are computed in the same IEEE double
 * operations in the same order as the C code.
 */

export const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
/** Accumulators start here so that `acc >> PRECISION_BITS` rounds to nearest. */
export const HALF = 1 << (PRECISION_BITS - 1);

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
export interface Taps {
  /** Taps per output sample (unused ones are zero); no output sample has more. */
  readonly kSize: number;
  /** [outSize, 2]: first input index and number of taps for each output sample. */
  readonly bounds: Int32Array;
  /** [outSize, kSize]: weights scaled by 2^22. */
  readonly weights: Int32Array;
}

/** The taps resampling `inSize` samples to `outSize` (both positive integers). */
export function computeTaps(inSize: number, outSize: number): Taps {
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

/** Taps with the same count for every output sample, so that a pass can unroll its tap loop. */
export interface FixedTaps {
  /** Taps per output sample: the largest count in the Taps it came from (1 <= n <= inSize). */
  readonly n: number;
  /** [outSize]: first input index of each output sample's n taps; start + n <= inSize. */
  readonly starts: Int32Array;
  /** [outSize, n]: weights scaled by 2^22, zero where the original taps had none. */
  readonly weights: Int32Array;
}

/**
 * The same filter as `taps`, widened to n consecutive taps per output sample. A window that
 * would run past the end of the input is moved left; the taps it gains have weight zero, and
 * adding zero to an integer sum changes nothing, so results stay bit-identical.
 */
export function fixTaps(taps: Taps, inSize: number, outSize: number): FixedTaps {
  let n = 1;
  for (let xx = 0; xx < outSize; xx++) n = Math.max(n, taps.bounds[xx * 2 + 1]!);
  // Clipping in computeTaps keeps every count <= inSize, so every window fits.
  const starts = new Int32Array(outSize);
  const weights = new Int32Array(outSize * n);
  for (let xx = 0; xx < outSize; xx++) {
    const xMin = taps.bounds[xx * 2]!;
    const count = taps.bounds[xx * 2 + 1]!;
    const start = Math.min(xMin, inSize - n);
    starts[xx] = start;
    for (let i = 0; i < count; i++) weights[xx * n + (xMin - start) + i] = taps.weights[xx * taps.kSize + i]!;
  }
  return { n, starts, weights };
}
