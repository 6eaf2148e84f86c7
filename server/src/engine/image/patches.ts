/**
 * Resized RGB -> `pixel_values`: rescale, normalise, repeat the frame in time and cut into patches
 * in the vision tower's 2x2-merge-block order.
 *
 * Arithmetic, exactly as Qwen2VLImageProcessorPil runs it in numpy (transformers 5.17,
 * image_transforms.py `rescale` and `normalize`, called one after the other, NOT fused):
 *   x = float32(float64(u8) * rescale_factor)          # rescale upcasts, then downcasts to float32
 *   y = (x - float32(mean[c])) / float32(std[c])       # float32 subtract, float32 divide
 * Every step is an IEEE operation on float32 operands, which a double computes and Math.fround
 * rounds to the same float32 (double rounding is harmless for +, -, *, / when the wide format has
 * at least 2 * 24 + 2 bits). The result depends only on (channel, byte), so a 3 x 256 table holds
 * every possible value and the patch loop only copies.
 *
 * Layout (transformers: reshape(gt, T, C, gh/M, M, P, gw/M, M, P), transpose to
 * (gt, gh/M, gw/M, M, M, C, T, P, P), flatten), for one image (gt = 1):
 *   row    r = ((bh * (gw / M) + bw) * M + ih) * M + iw  for patch (ph, pw) = (bh * M + ih, bw * M + iw)
 *   column   = ((c * T + t) * P + y) * P + x
 *   value    = image[c][ph * P + y][pw * P + x]   (the same for every t: the frame is repeated)
 */

import type { RgbImage } from './types';

/** Patch geometry, named as in preprocessor_config.json. */
export interface PatchLayout {
  /** Side of a square patch in pixels, P (14). */
  readonly patchSize: number;
  /** Frames per temporal patch, T (2); a still image is repeated T times. */
  readonly temporalPatchSize: number;
  /** Side of a merge block in patches, M (2). */
  readonly mergeSize: number;
}

/** Per-channel normalisation, named as in preprocessor_config.json. */
export interface Normalization {
  readonly rescaleFactor: number;
  readonly imageMean: readonly [number, number, number];
  readonly imageStd: readonly [number, number, number];
}

/** Number of colour channels, C. */
const N_CHANNELS = 3;

/**
 * The normalised float32 value of every (channel, byte): [3, 256], index `c * 256 + v`.
 */
export function normalizationTable(norm: Normalization): Float32Array {
  const table = new Float32Array(N_CHANNELS * 256);
  for (let c = 0; c < N_CHANNELS; c++) {
    const mean = Math.fround(norm.imageMean[c]);
    const std = Math.fround(norm.imageStd[c]);
    for (let v = 0; v < 256; v++) {
      const x = Math.fround(v * norm.rescaleFactor);
      table[c * 256 + v] = Math.fround(Math.fround(x - mean) / std);
    }
  }
  return table;
}

/**
 * Cuts `image` ([H, W, 3], H and W multiples of P * M) into `pixel_values`
 * [gh * gw, C * T * P * P] with gh = H / P and gw = W / P, in merge-block order.
 * Precondition: image.height and image.width are multiples of patchSize * mergeSize.
 */
export function toPixelValues(image: RgbImage, layout: PatchLayout, norm: Normalization): Float32Array {
  const { patchSize: P, temporalPatchSize: T, mergeSize: M } = layout;
  const { width: W, height: H, data } = image;
  if (H % (P * M) !== 0 || W % (P * M) !== 0) {
    throw new RangeError(`image ${W}x${H} is not a multiple of patch_size * merge_size = ${P * M}`);
  }
  const table = normalizationTable(norm);
  const gh = H / P;
  const gw = W / P;
  const rowLength = N_CHANNELS * T * P * P;
  const out = new Float32Array(gh * gw * rowLength); // [gh * gw, C * T * P * P]

  let row = 0;
  for (let bh = 0; bh < gh / M; bh++) {
    for (let bw = 0; bw < gw / M; bw++) {
      for (let ih = 0; ih < M; ih++) {
        for (let iw = 0; iw < M; iw++, row++) {
          const ph = bh * M + ih;
          const pw = bw * M + iw;
          const rowBase = row * rowLength;
          for (let c = 0; c < N_CHANNELS; c++) {
            const tableBase = c * 256;
            // Fill frame t = 0, then copy it to the other T - 1 frames.
            const frame0 = rowBase + c * T * P * P;
            for (let y = 0; y < P; y++) {
              let src = ((ph * P + y) * W + pw * P) * N_CHANNELS + c;
              const dst = frame0 + y * P;
              for (let x = 0; x < P; x++, src += N_CHANNELS) out[dst + x] = table[tableBase + data[src]!]!;
            }
            for (let t = 1; t < T; t++) out.copyWithin(frame0 + t * P * P, frame0, frame0 + P * P);
          }
        }
      }
    }
  }
  return out;
}
