/**
 * Host-side inputs of the vision graph for one image: the resized uint8 RGB pixels and the
 * normalisation constants (the graph makes `pixel_values` from them), the 2-D rotary table and,
 * for Qwen2.5-VL, the padded window layout (kernels/graphs/vision.ts).
 */
import { ropeInvFreq } from '../../../kernels/graphs/common';
import { MASKED } from '../../../kernels/graphs/common';
import type { PreprocessConfig, VisionConfig } from './config';
import { normalizationTable } from './image/patches';
import type { RgbImage } from './image/types';
import { visionRotaryPositions } from './image/rotary-positions';
import { windowIndex } from './image/window-index';

export interface WindowLayout {
  readonly nWin: number;
  /** Patches per padded window: (window units per side * merge)^2, 64 for 112 px windows. */
  readonly winLen: number;
  /** [nWin * winLen] patch row of each slot (0 for padding, which the mask hides). */
  readonly gather: Int32Array;
  /** [nWin * winLen] 0 for real keys, MASKED for padding. */
  readonly mask: Float32Array;
  /** [nPatches] slot of each patch row. */
  readonly scatter: Int32Array;
}

export interface VisionInputs {
  /** The resized image, [height, width, 3] uint8; height and width are multiples of patch * merge. */
  readonly pixels: RgbImage;
  /** What the graph normalises with (graphNormalization). */
  readonly norm: GraphNormalization;
  readonly nPatches: number;
  readonly headDim: number;
  /** [nPatches, headDim / 2] rotary angles. */
  readonly ropeAngles: Float32Array;
  readonly windows?: WindowLayout;
}

/**
 * HF VisionRotaryEmbedding(headDim / 2): per patch the angles are
 * [hpos * invFreq, wpos * invFreq], headDim / 2 of them, in float32 as PyTorch forms them.
 */
export function visionRopeAngles(cfg: VisionConfig, gridH: number, gridW: number): Float32Array {
  const D = cfg.embedDim / cfg.numHeads;
  const invFreq = ropeInvFreq(10000, D / 2); // D/4 frequencies
  const nf = invFreq.length;
  const { hpos: h, wpos: w } = visionRotaryPositions(gridH, gridW, cfg.spatialMergeSize);
  const n = gridH * gridW;
  const angles = new Float32Array(n * 2 * nf);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < nf; i++) {
      angles[r * 2 * nf + i] = h[r] * invFreq[i];
      angles[r * 2 * nf + nf + i] = w[r] * invFreq[i];
    }
  }
  return angles;
}

/**
 * Qwen2.5-VL windows (HF get_window_index, see image/window-index.ts) laid out as
 * fixed-size padded slots. Each merge unit u owns pixel_values rows [u*m^2, (u+1)*m^2).
 */
export function windowLayout(cfg: VisionConfig, gridH: number, gridW: number): WindowLayout {
  const m = cfg.spatialMergeSize;
  const unitsPerSide = cfg.windowSize / m / cfg.patchSize;
  const perUnit = m * m;
  const winLen = unitsPerSide * unitsPerSide * perUnit;
  const windows = windowIndex(gridH, gridW, m, cfg.windowSize, cfg.patchSize);
  const nWin = windows.length;
  const gather = new Int32Array(nWin * winLen);
  const mask = new Float32Array(nWin * winLen).fill(MASKED);
  const scatter = new Int32Array(gridH * gridW);
  windows.forEach((units, wi) => {
    let k = 0;
    for (const u of units) {
      for (let j = 0; j < perUnit; j++, k++) {
        const slot = wi * winLen + k;
        gather[slot] = u * perUnit + j;
        mask[slot] = 0;
        scatter[u * perUnit + j] = slot;
      }
    }
  });
  return { nWin, winLen, gather, mask, scatter };
}

/**
 * Inputs for one resized image (preprocess.ts `PreprocessedImage.resized`).
 * @throws RangeError when its sides are not multiples of patch_size * merge_size.
 */
export function visionInputs(cfg: VisionConfig, norm: PreprocessConfig, pixels: RgbImage): VisionInputs {
  const factor = cfg.patchSize * cfg.spatialMergeSize;
  if (pixels.height % factor !== 0 || pixels.width % factor !== 0 || pixels.data.length !== pixels.width * pixels.height * 3) {
    throw new RangeError(`image ${pixels.width}x${pixels.height} is not RGB with sides that are multiples of ${factor}`);
  }
  const gridH = pixels.height / cfg.patchSize;
  const gridW = pixels.width / cfg.patchSize;
  return {
    pixels, norm: graphNormalization(norm), nPatches: gridH * gridW, headDim: cfg.embedDim / cfg.numHeads,
    ropeAngles: visionRopeAngles(cfg, gridH, gridW),
    windows: cfg.family === 'qwen2_5_vl' ? windowLayout(cfg, gridH, gridW) : undefined,
  };
}

/** The vision graph's normalisation inputs: ((byte / divisor) - mean[c]) / std[c], each step in float32. */
export interface GraphNormalization {
  /** [1] 1 / rescale_factor, rounded to float32 (255 for 1/255). */
  readonly divisor: Float32Array;
  /** [3] image_mean and image_std, rounded to float32. */
  readonly mean: Float32Array;
  readonly std: Float32Array;
}

const normalizations = new WeakMap<PreprocessConfig, GraphNormalization>();

/**
 * The graph's normalisation for a preprocess config (one per config object, a checkpoint has one),
 * checked to give the same float32 as transformers (patches.ts normalizationTable) for all 3 x 256
 * (channel, byte) values: true for rescale_factor = 1/255, where float32 v / 255 is correctly rounded.
 * @throws RangeError for a rescale_factor whose float32 division differs from transformers' float64
 *   multiplication for some byte (no released Qwen2-VL / Qwen2.5-VL checkpoint has one).
 */
export function graphNormalization(norm: PreprocessConfig): GraphNormalization {
  const known = normalizations.get(norm);
  if (known) return known;
  const g: GraphNormalization = {
    divisor: Float32Array.of(1 / norm.rescaleFactor),
    mean: Float32Array.from(norm.imageMean),
    std: Float32Array.from(norm.imageStd),
  };
  const table = normalizationTable(norm);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) {
      // Each float32 operation as a double operation rounded by Math.fround (exact, see patches.ts).
      const x = Math.fround(Math.fround(Math.fround(v / g.divisor[0]) - g.mean[c]) / g.std[c]);
      if (!Object.is(x, table[c * 256 + v])) {
        throw new RangeError(`rescale_factor ${norm.rescaleFactor}: the vision graph's float32 normalisation differs from transformers' for byte ${v} of channel ${c}`);
      }
    }
  }
  normalizations.set(norm, g);
  return g;
}
