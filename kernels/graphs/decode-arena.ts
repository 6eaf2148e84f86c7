/**
 * The fixed-shape decode step over a KV arena (DESIGN.md 3a, rules 2 and 3), and the
 * small graph that rotates a prefill's keys into the arena's layout.
 *
 * Decode graph: ONE new token; every input has the same shape at every step, so a
 * provider can capture it once and replay it (CUDA graphs, WebGPU enableGraphCapture).
 * The arena holds per layer keys (AFTER RoPE) and values of rows [0, cap); rows
 * [0, seqlens_k) are filled. com.microsoft.GroupQueryAttention writes the new row's
 * key/value at row `seqlens_k` and attends over rows [0, total_sequence_length); the
 * caller binds the same tensor as `past_key.L` feed and `present_key.L` fetch, which
 * makes GQA update it in place (past/present buffer sharing, as onnxruntime-genai does).
 *
 * Inputs (batch 1; KV kv-heads, D head size, H query heads, cap the arena capacity):
 *   input_ids              [1] int32        the new token
 *   position               [1] int32        its text position (row + ropeDelta)
 *   seqlens_k              [1] int32        rows already in the arena (= total - 1, GQA's convention)
 *   total_sequence_length  [] int32         rows after this step (seqlens_k + 1)
 *   past_key.L             [1, KV, cap, D]  per layer, rotated keys (compute dtype)
 *   past_value.L           [1, KV, cap, D]
 * Outputs:
 *   logits                 [1, vocab] f32
 *   next_token             [1] int32        argmax of logits (first maximum, as the host's
 *                                           `argmax`), so a greedy decode reads back 4 bytes
 *   top_logits             [1, K] f32       the K largest logits, largest first (K = sampleTopK)
 *   top_ids                [1, K] int32     their token ids; equal logits: the lower id first
 *   nonfinite              [1] bool         any NaN or +-Infinity in the logits row
 *   present_key.L          [1, KV, cap, D]  the arena with row seqlens_k written (bind to past_key.L)
 *   present_value.L        [1, KV, cap, D]
 *
 * Why M-RoPE reduces to 1-D RoPE here: a text row's M-RoPE position is (p, p, p) (row +
 * ropeDelta on all three streams, engine/positions.ts). mropeAngles (llm-parts.ts) gives
 * slot i the angle pos[sigma(i)] * invFreq[i]; with all streams equal to p that is
 * p * invFreq[i] whatever sigma is, i.e. plain RoPE at p. `textAngles` below computes it
 * with the same ops (int32 -> float32 Cast, float32 Mul by the same ropeInvFreq constants),
 * so the new row's q and k are rotated bit for bit as the step graph (llm.ts) rotates them.
 */
import type { TextConfig } from './config';
import { BuildOptions, ModelGraph, WeightLookup, ropeInvFreq } from './common';
import { embedRows, finishLayer, lmHead, mropeAngles } from './llm-parts';

/**
 * Sampling candidates per decode step (the top-K that `top_logits` / `top_ids` return): a sampled
 * token is drawn from the K most likely tokens only (as llama.cpp's and vLLM's `top_k`), so a step
 * reads back K * 8 bytes instead of the whole row (vocab * 4: ~600 KB for Qwen2.5-VL). 64 is above
 * the usual defaults (llama.cpp 40, transformers 50), so the cut rarely changes what top-p keeps,
 * and 512 bytes is one small copy.
 */
export const SAMPLE_TOP_K = 64;

/** The candidates a vocabulary of `vocab` tokens gives (TopK needs K <= the axis length). */
export function sampleTopK(vocab: number): number {
  return Math.min(SAMPLE_TOP_K, vocab);
}

export function buildDecodeArenaGraph(cfg: TextConfig, lookup: WeightLookup, opts: BuildOptions): Uint8Array {
  const g = new ModelGraph('qwen2-decode-arena', lookup, opts);
  const { hiddenSize: Hd, numHeads: H, numKvHeads: KV, headDim: D, numLayers } = cfg;

  const inputIds = g.input('input_ids', 'int32', [1]);
  const position = g.input('position', 'int32', [1]);
  const seqlensK = g.input('seqlens_k', 'int32', [1]);
  const total = g.input('total_sequence_length', 'int32', []);

  let x = embedRows(g, Hd, false, inputIds); // [1, Hd] float32
  const rot = g.rotaryCache(textAngles(g, cfg, position)); // cos/sin [1, D/2]: one table row
  const row0 = g.reshape(g.i64([0]), [1, 1]); // [1, 1] int64: the new row takes table row 0

  let h = g.toCompute(g.rmsNorm(x, 'model.layers.0.input_layernorm.weight', cfg.rmsNormEps));
  for (let l = 0; l < numLayers; l++) {
    const p = `model.layers.${l}`;
    g.scope(`layer${l}`, () => {
      const [q0, k0, v0] = g.fusedLinear(h, ['q_proj', 'k_proj', 'v_proj'].map((n) => `${p}.self_attn.${n}`));
      const q = g.rotateAt(g.reshape(q0, [1, 1, H * D]), rot, row0, H); // [1, 1, H*D]
      const k = g.rotateAt(g.reshape(k0, [1, 1, KV * D]), rot, row0, KV); // [1, 1, KV*D]
      const v = g.reshape(v0, [1, 1, KV * D]);
      const pastK = g.input(`past_key.${l}`, g.cdt, [1, KV, 'cap', D]);
      const pastV = g.input(`past_value.${l}`, g.cdt, [1, KV, 'cap', D]);
      const [o, presentK, presentV] = g.node('GroupQueryAttention', [q, k, v, pastK, pastV, seqlensK, total],
        { num_heads: H, kv_num_heads: KV, scale: { f: 1 / Math.sqrt(D) } },
        { domain: 'com.microsoft', outputs: 3 });
      g.output(presentK, `present_key.${l}`, g.cdt, [1, KV, 'cap', D]);
      g.output(presentV, `present_value.${l}`, g.cdt, [1, KV, 'cap', D]);
      const next = finishLayer(g, cfg, l, x, g.reshape(o, [1, H * D]), l + 1 < numLayers ? l + 1 : undefined);
      x = next.x;
      if (next.h) h = next.h;
    });
  }
  lmHead(g, cfg, x); // output `logits` [1, vocab] float32
  // select_last_index 0: the first maximum, the host argmax's tie-break.
  const token = g.cast(g.op('ArgMax', ['logits'], { axis: 1, keepdims: 0, select_last_index: 0 }), 'int32');
  g.output(token, 'next_token', 'int32', [1]);
  // TopK, sorted, largest first; ONNX breaks ties by the lower index (the host's topCandidates does the same).
  const K = sampleTopK(cfg.vocabSize);
  const [topValues, topIds] = g.node('TopK', ['logits', g.i64([K])], { axis: 1, largest: 1, sorted: 1 }, { outputs: 2 });
  g.output(topValues, 'top_logits', 'float32', [1, K]);
  g.output(g.cast(topIds, 'int32'), 'top_ids', 'int32', [1, K]);
  // x - x is 0 for a finite x and NaN for NaN and +-Infinity; a sum keeps any NaN (a max may drop it).
  const nanSum = g.op('ReduceSum', [g.op('Sub', ['logits', 'logits']), g.i64([1])], { keepdims: 0 }); // [1]
  g.output(g.op('IsNaN', [nanSum]), 'nonfinite', 'bool', [1]);
  return g.toModel({ opset: 21 });
}

/** Rotary angles [1, D/2] float32 of a text position [1] int32: p * theta^(-2i/D) (see the header). */
function textAngles(g: ModelGraph, cfg: TextConfig, position: string): string {
  const p = g.op('Unsqueeze', [g.cast(position, 'float32'), g.i64([1])]); // [1, 1]
  return g.op('Mul', [p, g.f32(ropeInvFreq(cfg.ropeTheta, cfg.headDim))]);
}

/**
 * The arena-fill graph: a prefill's pre-RoPE keys rotated at their M-RoPE positions
 * (image rows use their 3-stream positions), with exactly the ops llm.ts applies to
 * given keys, put in arena order and layout on the device (no host copy):
 *   positions     [3, n] int32
 *   order         [m] int32     for arena row r < m, the index of its row among the n given
 *                               (the prefill's rows in any order, a dummy row skipped)
 *   pads          [8] int64     [0, 0, 0, 0, 0, 0, cap - m, 0]: zero rows up to the capacity
 *   key.L         [n, KV, D]    pre-RoPE keys of n rows (compute dtype)
 *   value.L       [n, KV, D]
 *   arena_key.L   [1, KV, cap, D] rotated keys, rows [0, m) filled, the rest zero
 *   arena_value.L [1, KV, cap, D]
 */
export function buildArenaFillGraph(cfg: TextConfig, lookup: WeightLookup, opts: BuildOptions): Uint8Array {
  const g = new ModelGraph('qwen2-arena-fill', lookup, opts);
  const { numKvHeads: KV, headDim: D, numLayers } = cfg;
  const kRot = g.rotaryTables(mropeAngles(g, cfg, g.input('positions', 'int32', [3, 'n'])));
  const order = g.input('order', 'int32', ['m']);
  const pads = g.input('pads', 'int64', [8]);
  const place = (x: string) => g.op('Pad', [g.op('Unsqueeze', [g.op('Gather', [g.transpose(x, [1, 0, 2]), order], { axis: 1 }), g.i64([0])]), pads]);
  for (let l = 0; l < numLayers; l++) {
    const k = g.input(`key.${l}`, g.cdt, ['n', KV, D]);
    const v = g.input(`value.${l}`, g.cdt, ['n', KV, D]);
    const kr = g.reshape(g.rotate(g.reshape(k, [1, -1, KV * D]), kRot, KV), [-1, KV, D]); // [n, KV, D]
    g.output(place(kr), `arena_key.${l}`, g.cdt, [1, KV, 'cap', D]);
    g.output(place(v), `arena_value.${l}`, g.cdt, [1, KV, 'cap', D]);
  }
  return g.toModel({ opset: 21 });
}

/**
 * The arena-grow graph: every layer's arena zero-padded to a larger capacity, on the device.
 *   pads          [8] int64     [0, 0, 0, 0, 0, 0, cap2 - cap, 0]
 *   key.L, value.L           [1, KV, cap, D]
 *   grown_key.L, grown_value.L [1, KV, cap2, D]
 */
export function buildArenaGrowGraph(cfg: TextConfig, lookup: WeightLookup, opts: BuildOptions): Uint8Array {
  const g = new ModelGraph('qwen2-arena-grow', lookup, opts);
  const { numKvHeads: KV, headDim: D, numLayers } = cfg;
  const pads = g.input('pads', 'int64', [8]);
  for (let l = 0; l < numLayers; l++) {
    for (const kv of ['key', 'value']) {
      const x = g.input(`${kv}.${l}`, g.cdt, [1, KV, 'cap', D]);
      g.output(g.op('Pad', [x, pads]), `grown_${kv}.${l}`, g.cdt, [1, KV, 'cap2', D]);
    }
  }
  return g.toModel({ opset: 21 });
}
