/**
 * Vision encoder graphs: Qwen2-VL (LayerNorm, QuickGELU MLP, full attention) and
 * Qwen2.5-VL (RMSNorm, SwiGLU MLP with biases, window attention except in
 * `fullAttBlockIndexes`). One run encodes one image (grid_t = 1), so "full"
 * attention is over all of that image's patches, as HF's cu_seqlens make it.
 *
 * Inputs
 *   pixels          [height, width, C] uint8   the resized RGB image (height, width multiples of P*M)
 *   rescale_divisor [1, 1, 1, 1] float32       1 / rescale_factor (255)
 *   image_mean      [1, C, 1, 1] float32       image_mean, image_std of preprocessor_config.json
 *   image_std       [1, C, 1, 1] float32       (host: vision-inputs.ts graphNormalization)
 *   rope_angles   [nPatches, headDim/2] float32  2-D rotary angles (host-computed)
 *   Qwen2.5-VL only (window attention; windows padded to `winLen` patches):
 *   win_gather    [nWin * winLen] int32         patch row for each padded window slot
 *   win_mask      [nWin, 1, 1, winLen] float32  0 for real keys, MASKED for padding
 *   win_scatter   [nPatches] int32              padded slot of each patch row
 * Output
 *   image_embeds  [nPatches / merge^2, outHidden] float32  (merged row-major = <|image_pad|> order)
 *
 * HF reorders merge units by window before the blocks and undoes it after the
 * merger. Every op except attention is per patch and the merger groups the 4
 * rows of one merge unit, which the reorder keeps together, so we keep the
 * natural order and only gather/scatter around windowed attention.
 */
import type { VisionConfig } from './config';
import { BuildOptions, MASKED, ModelGraph, WeightLookup } from './common';

export function buildVisionGraph(cfg: VisionConfig, lookup: WeightLookup, opts: BuildOptions): Uint8Array {
  const g = new ModelGraph(`${cfg.family}-vision`, lookup, opts);
  const E = cfg.embedDim;
  const H = cfg.numHeads;
  const D = E / H;
  const patchDim = cfg.inChannels * cfg.temporalPatchSize * cfg.patchSize * cfg.patchSize;
  const windowed = cfg.family === 'qwen2_5_vl';

  const pv = inGraphPixelValues(g, cfg);
  // Per-patch rotary angles [nP, D/2] (2-D RoPE: row angles, then column angles).
  const rope = g.rotaryTables(g.input('rope_angles', 'float32', ['nPatches', D / 2]));
  let winGather = '', winMask = '', winScatter = '';
  if (windowed) {
    winGather = g.input('win_gather', 'int32', ['nWinSlots']);
    winMask = g.input('win_mask', 'float32', ['nWin', 1, 1, 'winLen']);
    winScatter = g.input('win_scatter', 'int32', ['nPatches']);
  }

  // MultiHeadAttention over windows: the [nWin, W, E] shape and the key mask as a bias
  // [nWin, 1, W, W] in the compute dtype, built once for all windowed blocks.
  let winMha: { shape: string; bias: string } | undefined;
  if (windowed && opts.attention !== 'manual') {
    const ms = g.op('Shape', [winMask]); // [nWin, 1, 1, W]
    const nWin = g.op('Slice', [ms, g.i64([0]), g.i64([1])]);
    const w = g.op('Slice', [ms, g.i64([3]), g.i64([4])]);
    winMha = {
      shape: g.op('Concat', [nWin, w, g.i64([E])], { axis: 0 }),
      bias: g.toCompute(g.op('Expand', [winMask, g.op('Concat', [nWin, g.i64([1]), w, w], { axis: 0 })])),
    };
  }

  // Patch embedding: Conv3d with kernel = stride = patch == x @ W.reshape(E, patchDim)^T.
  const wPatch = g.transpose(g.reshape(g.weight('visual.patch_embed.proj.weight', g.cdt), [E, patchDim]), [1, 0]);
  let x = g.toFloat32(g.op('MatMul', [g.toCompute(pv), wPatch])); // [nP, E] residual, float32

  const norm = (v: string, name: string) =>
    cfg.family === 'qwen2_vl' ? g.layerNorm(v, name, cfg.normEps) : g.rmsNorm(v, `${name}.weight`, cfg.normEps);

  for (let b = 0; b < cfg.depth; b++) {
    const p = `visual.blocks.${b}`;
    g.scope(`vblock${b}`, () => {
      const useWindows = windowed && !cfg.fullAttBlockIndexes.includes(b);
      // Attention.
      const h = g.toCompute(norm(x, `${p}.norm1`));
      const qkv = g.reshape(g.linear(h, `${p}.attn.qkv`), [-1, 3, H, D]); // [nP, 3, H, D]
      const [q0, k0, v0] = g.node('Split', [qkv, g.i64([1, 1, 1])], { axis: 1 }, { outputs: 3 });
      const q = g.reshape(g.rotate(g.reshape(q0, [1, -1, E]), rope, H), [-1, H, D]); // [nP, H, D]
      const k = g.reshape(g.rotate(g.reshape(k0, [1, -1, E]), rope, H), [-1, H, D]);
      const v = g.reshape(v0, [-1, H, D]);
      let o: string; // [nP, E]
      if (useWindows) {
        // Padded windows: gather slots [nWin*W, H, D]; attention per window; scatter back.
        const slots = (t: string) => g.op('Gather', [t, winGather], { axis: 0 });
        let ow: string; // [nWin*W, E]
        if (opts.attention !== 'manual') {
          const win = (t: string) => g.op('Reshape', [slots(t), winMha!.shape]);
          ow = g.reshape(g.mha(win(q), win(k), win(v), H, D, winMha!.bias), [-1, E]);
        } else {
          const win = (t: string) => g.transpose(g.op('Reshape', [slots(t), winShape(g, winMask, H, D)]), [0, 2, 1, 3]); // [nWin, H, W, D]
          ow = g.reshape(g.transpose(g.attend(win(q), win(k), win(v), D, winMask), [0, 2, 1, 3]), [-1, E]);
        }
        o = g.op('Gather', [ow, winScatter], { axis: 0 });
      } else if (opts.attention !== 'manual') {
        const flat = (t: string) => g.reshape(t, [1, -1, E]);
        o = g.reshape(g.mha(flat(q), flat(k), flat(v), H, D), [-1, E]);
      } else {
        const whole = (t: string) => g.transpose(g.op('Unsqueeze', [t, g.i64([0])]), [0, 2, 1, 3]); // [1, H, nP, D]
        o = g.reshape(g.transpose(g.attend(whole(q), whole(k), whole(v), D), [0, 2, 1, 3]), [-1, E]);
      }
      const attnOut = g.toFloat32(g.linear(o, `${p}.attn.proj`));
      x = g.op('Add', [x, attnOut]);
      // MLP.
      const m = g.toCompute(norm(x, `${p}.norm2`));
      let y: string;
      if (cfg.family === 'qwen2_vl') {
        y = g.linear(g.op('QuickGelu', [g.linear(m, `${p}.mlp.fc1`)], { alpha: { f: 1.702 } }, 'com.microsoft'), `${p}.mlp.fc2`);
      } else {
        const [gate, up] = g.fusedLinear(m, [`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`]);
        y = g.linear(g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]), `${p}.mlp.down_proj`);
      }
      x = g.op('Add', [x, g.toFloat32(y)]);
    });
  }

  // Patch merger: ln_q per patch, 4 consecutive rows -> one token, MLP with exact GELU.
  const merge = cfg.spatialMergeSize * cfg.spatialMergeSize;
  const lnq = cfg.family === 'qwen2_vl'
    ? g.layerNorm(x, 'visual.merger.ln_q', cfg.normEps)
    : g.rmsNorm(x, 'visual.merger.ln_q.weight', cfg.normEps);
  const grouped = g.toCompute(g.reshape(lnq, [-1, E * merge])); // [nP/4, 4E]
  const hidden = g.op('Gelu', [g.linear(grouped, 'visual.merger.mlp.0')]);
  const out = g.toFloat32(g.linear(hidden, 'visual.merger.mlp.2'));
  g.output(out, 'image_embeds', 'float32', ['nTokens', cfg.outHidden]);
  return g.toModel({ opset: 21 });
}

/** What the in-graph patchify needs of the vision config. */
export type PatchGeometry = Pick<VisionConfig, 'inChannels' | 'patchSize' | 'temporalPatchSize' | 'spatialMergeSize'>;

/**
 * `pixel_values` [nPatches, C*T*P*P] float32 in 2x2 merge-block order, made in the graph from the
 * uint8 image exactly as image/patches.ts `toPixelValues` makes it on the host (4x fewer bytes
 * uploaded, no 43 MB host array for a 1344^2 image).
 *
 * Order first, on the uint8 bytes, in two transposes that each keep their innermost axis contiguous
 * (ORT copies whole runs then; with one 7-D transpose moving the channel axis inwards and a table
 * lookup for the normalisation, this step took ~5x longer: 190 vs 35 ms for 1344^2 on a 2-core CPU):
 *   [H*W, C] -> [C, H*W] = [C, bh, M, P, bw, M, P] -> [bh, bw, ih, iw, C, y, x] = [nP, C, 1, P*P]
 * Then, per element, ((x / rescale_divisor) - mean[c]) / std[c] in float32. transformers computes
 * float32(float64(x) * rescale_factor) then a float32 subtract and divide; with rescale_divisor =
 * 1 / rescale_factor = 255 the float32 division is correctly rounded v / 255, the same float32 for
 * all 256 bytes (a float32 Mul by 1/255 is not: 325 of the 768 (channel, byte) values differ).
 * The host checks that equality for the model's config (vision-inputs.ts `graphNormalization`).
 * Last, the frame is repeated to T and flattened: [nP, C, T, P*P] -> [nPatches, C*T*P*P].
 */
export function inGraphPixelValues(g: ModelGraph, cfg: PatchGeometry): string {
  const C = cfg.inChannels, P = cfg.patchSize, M = cfg.spatialMergeSize, T = cfg.temporalPatchSize;
  const pixels = g.input('pixels', 'uint8', ['height', 'width', C]);
  const divisor = g.input('rescale_divisor', 'float32', [1, 1, 1, 1]);
  const mean = g.input('image_mean', 'float32', [1, C, 1, 1]);
  const std = g.input('image_std', 'float32', [1, C, 1, 1]);
  const hw = g.op('Shape', [pixels]); // [H, W, C]
  const blocks = (axis: number) => g.op('Div', [g.op('Slice', [hw, g.i64([axis]), g.i64([axis + 1])]), g.i64([P * M])]);
  const planar = g.transpose(g.reshape(pixels, [-1, C]), [1, 0]); // [C, H*W]
  const split = g.op('Reshape', [planar, g.op('Concat', [g.i64([C]), blocks(0), g.i64([M, P]), blocks(1), g.i64([M, P])], { axis: 0 })]);
  const patches = g.reshape(g.transpose(split, [1, 4, 2, 5, 0, 3, 6]), [-1, C, 1, P * P]); // [nP, C, 1, P*P] uint8
  const normalised = g.op('Div', [g.op('Sub', [g.op('Div', [g.cast(patches, 'float32'), divisor]), mean]), std]);
  const frames = g.op('Expand', [normalised, g.i64([1, 1, T, 1])]); // [nP, C, T, P*P]
  return g.reshape(frames, [-1, C * T * P * P]);
}

/**
 * Only the in-graph patchify, for tests and the preprocessing bench: the inputs of `inGraphPixelValues`
 * -> `pixel_values` [nPatches, C*T*P*P] float32, or with `reduce`, its largest value [] (so that a
 * timing does not include copying 43 MB out, which the vision graph never does).
 */
export function buildPatchifyGraph(cfg: PatchGeometry, reduce = false): Uint8Array {
  const g = new ModelGraph('patchify', () => undefined, { computeDtype: 'float32', attention: 'manual' });
  const pv = inGraphPixelValues(g, cfg);
  if (reduce) g.output(g.op('ReduceMax', [g.reshape(pv, [-1])], { keepdims: 0 }), 'pixel_values_max', 'float32', []);
  else g.output(pv, 'pixel_values', 'float32', ['nPatches', cfg.inChannels * cfg.temporalPatchSize * cfg.patchSize * cfg.patchSize]);
  return g.toModel({ opset: 21 });
}

/** Shape [nWin, W, H, D] for the gathered window slots, with nWin and W read from win_mask. */
function winShape(g: ModelGraph, winMask: string, H: number, D: number): string {
  const ms = g.op('Shape', [winMask]); // [nWin, 1, 1, W]
  const nWin = g.op('Slice', [ms, g.i64([0]), g.i64([1])]);
  const w = g.op('Slice', [ms, g.i64([3]), g.i64([4])]);
  return g.op('Concat', [nWin, w, g.i64([H, D])], { axis: 0 });
}

export { MASKED };
