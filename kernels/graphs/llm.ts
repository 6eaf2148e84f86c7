/**
 * The language model "step" graph: selective prefill in its general form, and
 * decoding as its special case (one computed row, all earlier rows given).
 *
 * Rows are positions in the token sequence. A run computes an arbitrary subset
 * of rows (`q_rows`, ascending) and is given the keys/values of some other rows
 * (`past_rows`). Attention is causal by row index: computed row i attends to
 * every given or computed row j with j <= i. Keys are given and returned BEFORE
 * rotary embedding, with their M-RoPE positions, so that a cached image's keys
 * can be placed at new positions (VLCache) by just passing new positions.
 *
 * Inputs (batch is always 1 and is omitted; nQ computed rows, nP given rows):
 *   input_ids       [nQ] int32          token ids of computed rows (ignored where embed_source picks an image row)
 *   image_embeds    [nV, hidden] f32    (withImages) merged vision embeddings of computed image rows
 *   embed_source    [nQ] int32          (withImages) i < nQ: token embedding of row i; nQ + j: image_embeds[j]
 *   q_rows          [nQ] int32          sequence row index of each computed row
 *   q_positions     [3, nQ] int32       M-RoPE (t, h, w) positions of computed rows
 *   past_rows       [nP] int32          (withPast) row index of each given row
 *   past_positions  [3, nP] int32       (withPast)
 *   past_key.L      [nP, nKv, D] kv     (withPast) per layer L, pre-RoPE keys
 *   past_value.L    [nP, nKv, D] kv     (withPast)
 *   logit_rows      [nL] int32          (withLogits) indices into the computed rows whose logits are wanted
 * Outputs:
 *   logits          [nL, vocab] f32     (withLogits)
 *   present_key.L   [nP + nQ, nKv, D] kv   pre-RoPE, given rows first then computed rows
 *   present_value.L [nP + nQ, nKv, D] kv
 * Keys/values are row-major ([rows, nKv, D]) so that any row range is one contiguous
 * byte range: caching an image's rows or assembling given rows is a plain copy.
 * where kv is the compute dtype (float32 on CPU, float16 on GPU). Index inputs are
 * int32 because WebGPU has no native int64 (ORT would move such nodes to the CPU).
 *
 * A "probe" graph (`maxLayers: 2, withLogits: false`) is the same graph cut after
 * the keys/values of its last layer: CacheBlend runs it over every prompt row to
 * measure how far cached image KV deviates from fresh KV at layer 1, and it must
 * not load the final norm or the LM head (the largest single weight of a real model).
 *
 * `layered: true` builds the layered variant instead (llm-layered.ts): every layer
 * computes its own nested subset of rows and is given its own rows.
 */
import type { TextConfig } from './config';
import { graphOpset, MASKED, ModelGraph, WeightLookup } from './common';
import { buildLayeredStepGraph } from './llm-layered';
import { StepGraphOptions, attention, embedRows, finishLayer, givenThenFresh, lmHead, mropeAngles } from './llm-parts';

export type { StepGraphOptions } from './llm-parts';

export function buildStepGraph(cfg: TextConfig, lookup: WeightLookup, opts: StepGraphOptions): Uint8Array {
  if (opts.layered) return buildLayeredStepGraph(cfg, lookup, opts);
  const g = new ModelGraph('qwen2-step', lookup, opts);
  const { hiddenSize: Hd, numHeads: H, numKvHeads: KV, headDim: D } = cfg;
  const nLayers = Math.min(opts.maxLayers ?? cfg.numLayers, cfg.numLayers);
  const withLogits = opts.withLogits ?? true;

  const inputIds = g.input('input_ids', 'int32', ['nQ']);
  const qRows = g.input('q_rows', 'int32', ['nQ']);
  const qPos = g.input('q_positions', 'int32', [3, 'nQ']);
  const logitRows = withLogits ? g.input('logit_rows', 'int32', ['nL']) : '';

  // Embeddings [nQ, Hd] float32.
  let x = embedRows(g, Hd, opts.withImages, inputIds);

  // Rows and positions of all keys: given rows first, then computed rows.
  let kvRows = qRows;
  let kvPos = qPos;
  let pastRows = '', pastPos = '';
  if (opts.withPast) {
    pastRows = g.input('past_rows', 'int32', ['nP']);
    pastPos = g.input('past_positions', 'int32', [3, 'nP']);
    kvRows = g.op('Concat', [pastRows, qRows], { axis: 0 });
    kvPos = g.op('Concat', [pastPos, qPos], { axis: 1 });
  }

  // Causal mask by row index: [nQ, nT], 0 where kvRow <= qRow, MASKED elsewhere.
  const allowed = g.op('LessOrEqual', [
    g.op('Unsqueeze', [kvRows, g.i64([0])]), // [1, nT]
    g.op('Unsqueeze', [qRows, g.i64([1])]), // [nQ, 1]
  ]);
  const mask = g.op('Where', [allowed, g.f32(0), g.f32(MASKED)]); // [nQ, nT]

  // The mask as MultiHeadAttention's bias (or ONNX Attention's attn_mask) [1, 1, nQ, nT] in the compute dtype,
  // shared by all layers.
  const mhaBias = opts.attention !== 'manual' ? g.toCompute(g.op('Unsqueeze', [mask, g.i64([0, 1])])) : '';

  // M-RoPE tables (compute dtype), shared by all layers.
  const qRot = g.rotaryTables(mropeAngles(g, cfg, qPos));
  const kRot = g.rotaryTables(mropeAngles(g, cfg, kvPos));

  // Residual stream x: [nQ, Hd] float32. h: the normed input of the current layer.
  let h = g.toCompute(g.rmsNorm(x, 'model.layers.0.input_layernorm.weight', cfg.rmsNormEps));
  for (let l = 0; l < nLayers; l++) {
    const p = `model.layers.${l}`;
    g.scope(`layer${l}`, () => {
      if (!withLogits && l === nLayers - 1) {
        // A headless graph's last layer: only its K/V are outputs, so project k and v alone.
        const [k0, v0] = g.fusedLinear(h, ['k_proj', 'v_proj'].map((n) => `${p}.self_attn.${n}`));
        kvOutputs(g, l, g.reshape(k0, [-1, KV, D]), g.reshape(v0, [-1, KV, D]), opts.withPast, KV, D);
        return;
      }
      const [q0, k0, v0] = g.fusedLinear(h, ['q_proj', 'k_proj', 'v_proj'].map((n) => `${p}.self_attn.${n}`));
      const q = g.reshape(q0, [-1, H, D]); // [nQ, H, D]
      // [nQ, KV, D] -> [nT, KV, D] pre-RoPE, given rows first.
      const [kAll, vAll] = kvOutputs(g, l, g.reshape(k0, [-1, KV, D]), g.reshape(v0, [-1, KV, D]), opts.withPast, KV, D);

      const qr = g.reshape(g.rotate(g.reshape(q, [1, -1, H * D]), qRot, H), [-1, H, D]); // [nQ, H, D]
      const kr = g.reshape(g.rotate(g.reshape(kAll, [1, -1, KV * D]), kRot, KV), [-1, KV, D]); // [nT, KV, D]
      const o = attention(g, cfg, qr, kr, vAll, opts.attention !== 'manual' ? mhaBias : mask); // [nQ, H*D]
      const next = finishLayer(g, cfg, l, x, o, l + 1 < nLayers ? l + 1 : undefined);
      x = next.x;
      if (next.h) h = next.h;
    });
  }

  if (!withLogits) return g.toModel({ opset: graphOpset(opts) });
  // Final norm and LM head for the requested rows only.
  lmHead(g, cfg, g.op('Gather', [x, logitRows], { axis: 0 })); // [nL, Hd] -> logits [nL, vocab]
  return g.toModel({ opset: graphOpset(opts) });
}

/**
 * Layer l's keys/values of all rows, [nT, KV, D] pre-RoPE: withPast, the given rows'
 * then the computed rows' k, v [nQ, KV, D] (see givenThenFresh); without, the computed
 * rows' alone. Both are graph outputs (present_key.l / present_value.l). Returns [keys, values].
 */
function kvOutputs(g: ModelGraph, l: number, k: string, v: string, withPast: boolean, KV: number, D: number): [string, string] {
  if (withPast) return givenThenFresh(g, l, k, v, KV, D, 'nP', 'nT');
  g.output(k, `present_key.${l}`, g.cdt, ['nT', KV, D]);
  g.output(v, `present_value.${l}`, g.cdt, ['nT', KV, D]);
  return [k, v];
}
