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
 */
import { TextConfig } from '../../server/src/engine/config';
import { BuildOptions, MASKED, ModelGraph, RotaryTables, WeightLookup, ropeInvFreq } from './common';

export interface StepGraphOptions extends BuildOptions {
  readonly withImages: boolean;
  readonly withPast: boolean;
  /** Decoder layers built, from layer 0 (all when absent; more than the model has is all). */
  readonly maxLayers?: number;
  /**
   * false: no final norm, LM head, `logit_rows` input or `logits` output, and the last
   * built layer stops after its K/V projection (its attention and MLP feed nothing).
   * Default true.
   */
  readonly withLogits?: boolean;
}

export function buildStepGraph(cfg: TextConfig, lookup: WeightLookup, opts: StepGraphOptions): Uint8Array {
  const g = new ModelGraph('qwen2-step', lookup, opts);
  const { hiddenSize: Hd, numHeads: H, numKvHeads: KV, headDim: D } = cfg;
  const group = H / KV;
  const nLayers = Math.min(opts.maxLayers ?? cfg.numLayers, cfg.numLayers);
  const withLogits = opts.withLogits ?? true;

  const inputIds = g.input('input_ids', 'int32', ['nQ']);
  const qRows = g.input('q_rows', 'int32', ['nQ']);
  const qPos = g.input('q_positions', 'int32', [3, 'nQ']);
  const logitRows = withLogits ? g.input('logit_rows', 'int32', ['nL']) : '';

  // Embeddings [nQ, Hd] float32.
  // The table is gathered in the compute dtype (a float32 copy of a 151936-row table is 1.2 GB).
  let x = g.toFloat32(g.op('Gather', [g.weight('model.embed_tokens.weight', g.cdt), inputIds], { axis: 0 }));
  if (opts.withImages) {
    const img = g.input('image_embeds', 'float32', ['nV', Hd]);
    const src = g.input('embed_source', 'int32', ['nQ']);
    x = g.op('Gather', [g.op('Concat', [x, img], { axis: 0 }), src], { axis: 0 });
  }

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

  // The mask as MultiHeadAttention's bias [1, 1, nQ, nT] in the compute dtype, shared by all layers.
  const mhaBias = opts.attention === 'mha' ? g.toCompute(g.op('Unsqueeze', [mask, g.i64([0, 1])])) : '';

  // M-RoPE tables (compute dtype), shared by all layers.
  const qRot = mropeTables(g, cfg, qPos);
  const kRot = mropeTables(g, cfg, kvPos);

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
      let o: string; // [nQ, H*D]
      if (opts.attention === 'mha') {
        // GQA by repetition (HF repeat_kv: query head j uses kv head j / group): [nT, KV, D] -> [1, nT, H*D].
        const rep = (t: string) => g.reshape(g.op('Expand', [g.op('Unsqueeze', [t, g.i64([2])]), g.i64([1, 1, group, 1])]), [1, -1, H * D]);
        o = g.reshape(g.mha(g.reshape(qr, [1, -1, H * D]), rep(kr), rep(vAll), H, D, mhaBias), [-1, H * D]);
      } else {
        const qg = g.reshape(g.transpose(qr, [1, 0, 2]), [KV, group, -1, D]); // [KV, group, nQ, D]
        const kt = g.op('Unsqueeze', [g.transpose(kr, [1, 0, 2]), g.i64([1])]); // [KV, 1, nT, D]
        const vt = g.op('Unsqueeze', [g.transpose(vAll, [1, 0, 2]), g.i64([1])]);
        const og = g.attend(qg, kt, vt, D, mask); // [KV, group, nQ, D]
        o = g.reshape(g.transpose(g.reshape(og, [H, -1, D]), [1, 0, 2]), [-1, H * D]);
      }
      const attnOut = g.toFloat32(g.linear(o, `${p}.self_attn.o_proj`));
      const [m32, x1] = g.addRmsNorm(x, attnOut, `${p}.post_attention_layernorm.weight`, cfg.rmsNormEps);
      const m = g.toCompute(m32);
      const [gate, up] = g.fusedLinear(m, [`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`]);
      const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
      const y = downProj(g, act, `${p}.mlp.down_proj`);
      if (l + 1 < nLayers) {
        const [h32, x2] = g.addRmsNorm(x1, y, `model.layers.${l + 1}.input_layernorm.weight`, cfg.rmsNormEps);
        h = g.toCompute(h32);
        x = x2;
      } else {
        x = g.op('Add', [x1, y]);
      }
    });
  }

  if (!withLogits) return g.toModel({ opset: 21 });
  // Final norm and LM head for the requested rows only.
  const last = g.op('Gather', [x, logitRows], { axis: 0 }); // [nL, Hd]
  const normed = g.toCompute(g.rmsNorm(last, 'model.norm.weight', cfg.rmsNormEps));
  const headName = cfg.tieWordEmbeddings || !g.has('lm_head.weight') ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const logits = g.toFloat32(g.op('MatMul', [normed, g.weight(headName, g.cdt, true)]));
  g.output(logits, 'logits', 'float32', ['nL', cfg.vocabSize]);
  return g.toModel({ opset: 21 });
}

/**
 * Layer l's keys/values of all rows, [nT, KV, D] pre-RoPE: the given rows' (inputs
 * past_key.l / past_value.l, withPast) then the computed rows' k, v [nQ, KV, D]; both
 * are graph outputs (present_key.l / present_value.l). Returns [keys, values].
 */
function kvOutputs(g: ModelGraph, l: number, k: string, v: string, withPast: boolean, KV: number, D: number): [string, string] {
  let kAll = k, vAll = v;
  if (withPast) {
    kAll = g.op('Concat', [g.input(`past_key.${l}`, g.cdt, ['nP', KV, D]), kAll], { axis: 0 });
    vAll = g.op('Concat', [g.input(`past_value.${l}`, g.cdt, ['nP', KV, D]), vAll], { axis: 0 });
  }
  g.output(kAll, `present_key.${l}`, g.cdt, ['nT', KV, D]);
  g.output(vAll, `present_value.${l}`, g.cdt, ['nT', KV, D]);
  return [kAll, vAll];
}

/**
 * The MLP down projection, returned as float32. In float16, Qwen2's MLP output can
 * exceed 65504 (the known "!!!!" overflow); dividing the input by 64 before the
 * float16 MatMul and multiplying the float32 result back keeps it in range at no
 * precision cost (a power of two only moves the exponent).
 */
function downProj(g: ModelGraph, act: string, prefix: string): string {
  if (g.cdt === 'float32') return g.linear(act, prefix);
  const scaled = g.op('Mul', [act, g.cast(g.f32(1 / 64), 'float16')]);
  return g.op('Mul', [g.toFloat32(g.linear(scaled, prefix)), g.f32(64)]);
}

/**
 * Rotary tables for M-RoPE positions `pos` [3, n] int32 (see ModelGraph.rotaryTables). Slot i in [0, D/2) uses stream sigma(i) (t, h
 * or w by mrope_section); angle = pos[sigma(i)] * theta^(-2i/D), computed in float32.
 */
function mropeTables(g: ModelGraph, cfg: TextConfig, pos: string): RotaryTables {
  const D = cfg.headDim;
  const half = D / 2;
  const stream: number[] = [];
  cfg.mropeSection.forEach((n, s) => { for (let i = 0; i < n; i++) stream.push(s); });
  if (stream.length !== half) throw new Error(`mrope_section ${cfg.mropeSection} does not sum to headDim/2 = ${half}`);
  const posT = g.transpose(g.cast(pos, 'float32'), [1, 0]); // [n, 3]
  const sel = g.op('Gather', [posT, g.i32(stream)], { axis: 1 }); // [n, D/2]
  return g.rotaryTables(g.op('Mul', [sel, g.f32(ropeInvFreq(cfg.ropeTheta, D))])); // angles [n, D/2]
}
