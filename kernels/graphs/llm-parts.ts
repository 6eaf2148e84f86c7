/**
 * Pieces shared by the two language-model step graphs: the uniform one (llm.ts:
 * every layer computes the same rows) and the layered one (llm-layered.ts: each
 * layer computes a nested, shrinking subset of rows). Each helper adds exactly the
 * nodes the uniform graph always had, in the same order, so that moving them here
 * left the uniform graph byte for byte as it was.
 *
 * Shapes omit the batch (always 1). Hd: hidden size, H: query heads, KV: key/value
 * heads, D: head size; nQ: query rows, nT: key/value rows.
 */
import type { TextConfig } from './config';
import { BuildOptions, ModelGraph, ropeInvFreq } from './common';

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
  /**
   * Build the layered variant (llm-layered.ts): per-layer row subsets and given rows,
   * positions from one table per run. It always takes given rows (withPast must be true).
   */
  readonly layered?: boolean;
}

/**
 * The embeddings of the computed rows, [nQ, Hd] float32, from `inputIds` [nQ] and,
 * withImages, the inputs `image_embeds` [nV, Hd] and `embed_source` [nQ] (i < nQ: token
 * embedding of row i; nQ + j: image_embeds[j]).
 */
export function embedRows(g: ModelGraph, hidden: number, withImages: boolean, inputIds: string): string {
  // The table is gathered in the compute dtype (a float32 copy of a 151936-row table is 1.2 GB).
  let x = g.toFloat32(g.op('Gather', [g.weight('model.embed_tokens.weight', g.cdt), inputIds], { axis: 0 }));
  if (withImages) {
    const img = g.input('image_embeds', 'float32', ['nV', hidden]);
    const src = g.input('embed_source', 'int32', ['nQ']);
    x = g.op('Gather', [g.op('Concat', [x, img], { axis: 0 }), src], { axis: 0 });
  }
  return x;
}

/**
 * Rotary angles [n, D/2] float32 for M-RoPE positions `pos` [3, n] int32 (feed them to
 * ModelGraph.rotaryTables or rotaryCache). Slot i in [0, D/2) uses stream sigma(i) (t, h
 * or w by mrope_section); angle = pos[sigma(i)] * theta^(-2i/D), computed in float32.
 */
export function mropeAngles(g: ModelGraph, cfg: TextConfig, pos: string): string {
  const D = cfg.headDim;
  const half = D / 2;
  const stream: number[] = [];
  cfg.mropeSection.forEach((n, s) => { for (let i = 0; i < n; i++) stream.push(s); });
  if (stream.length !== half) throw new Error(`mrope_section ${cfg.mropeSection} does not sum to headDim/2 = ${half}`);
  const posT = g.transpose(g.cast(pos, 'float32'), [1, 0]); // [n, 3]
  const sel = g.op('Gather', [posT, g.i32(stream)], { axis: 1 }); // [n, D/2]
  return g.op('Mul', [sel, g.f32(ropeInvFreq(cfg.ropeTheta, D))]);
}

/**
 * Attention of rotated queries qr [nQ, H, D] over rotated keys kr [nT, KV, D] and values
 * v [nT, KV, D], all in the compute dtype; returns [nQ, H*D]. `mask` is additive: for
 * `mha` and `onnx` [1, 1, nQ, nT] in the compute dtype, for `manual` float32 broadcastable to
 * [KV, group, nQ, nT].
 */
export function attention(g: ModelGraph, cfg: TextConfig, qr: string, kr: string, v: string, mask: string): string {
  const { numHeads: H, numKvHeads: KV, headDim: D } = cfg;
  const group = H / KV;
  if (g.opts.attention === 'onnx') {
    // ONNX Attention (opset 23) on [1, n, heads*D]: query head j reads key/value head j / group, as HF's repeat_kv.
    const flat = (t: string, heads: number) => g.reshape(t, [1, -1, heads * D]);
    const o = g.op('Attention', [flat(qr, H), flat(kr, KV), flat(v, KV), mask],
      { q_num_heads: H, kv_num_heads: KV, scale: { f: 1 / Math.sqrt(D) } });
    return g.reshape(o, [-1, H * D]);
  }
  if (g.opts.attention === 'mha') {
    // GQA by repetition (HF repeat_kv: query head j uses kv head j / group): [nT, KV, D] -> [1, nT, H*D].
    // [nT, KV, D] -> [nT, KV, 1, D] as a reshape (not Unsqueeze), so that it joins the reshape before it.
    const rep = (t: string) => g.reshape(g.op('Expand', [g.reshape(t, [-1, KV, 1, D]), g.i64([1, 1, group, 1])]), [1, -1, H * D]);
    return g.reshape(g.mha(g.reshape(qr, [1, -1, H * D]), rep(kr), rep(v), H, D, mask), [-1, H * D]);
  }
  const qg = g.reshape(g.transpose(qr, [1, 0, 2]), [KV, group, -1, D]); // [KV, group, nQ, D]
  const kt = g.op('Unsqueeze', [g.transpose(kr, [1, 0, 2]), g.i64([1])]); // [KV, 1, nT, D]
  const vt = g.op('Unsqueeze', [g.transpose(v, [1, 0, 2]), g.i64([1])]);
  const og = g.attend(qg, kt, vt, D, mask); // [KV, group, nQ, D]
  return g.reshape(g.transpose(g.reshape(og, [H, -1, D]), [1, 0, 2]), [-1, H * D]);
}

/**
 * The rest of decoder layer `l` after attention: o_proj, residual, MLP, residual. x: the
 * residual stream [nQ, Hd] float32 of the rows whose attention output o [nQ, H*D] is given.
 * Returns the new residual stream and, when `nextLayer` is given, that layer's normed
 * input h (compute dtype; the residual add is fused with the next layer's input norm).
 */
export function finishLayer(g: ModelGraph, cfg: TextConfig, l: number, x: string, o: string, nextLayer?: number): { x: string; h?: string } {
  const p = `model.layers.${l}`;
  const attnOut = g.toFloat32(g.linear(o, `${p}.self_attn.o_proj`));
  const [m32, x1] = g.addRmsNorm(x, attnOut, `${p}.post_attention_layernorm.weight`, cfg.rmsNormEps);
  const m = g.toCompute(m32);
  const [gate, up] = g.fusedLinear(m, [`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`]);
  const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
  const y = downProj(g, act, `${p}.mlp.down_proj`);
  if (nextLayer === undefined) return { x: g.op('Add', [x1, y]) };
  const [h32, x2] = g.addRmsNorm(x1, y, `model.layers.${nextLayer}.input_layernorm.weight`, cfg.rmsNormEps);
  return { x: x2, h: g.toCompute(h32) };
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

/** Final norm and LM head of the residual rows x [nL, Hd] float32: output `logits` [nL, vocab] float32. */
export function lmHead(g: ModelGraph, cfg: TextConfig, x: string): void {
  const normed = g.toCompute(g.rmsNorm(x, 'model.norm.weight', cfg.rmsNormEps));
  const headName = cfg.tieWordEmbeddings || !g.has('lm_head.weight') ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const logits = g.toFloat32(g.op('MatMul', [normed, g.weight(headName, g.cdt, true)]));
  g.output(logits, 'logits', 'float32', ['nL', cfg.vocabSize]);
}

/**
 * Layer l's keys/values of all rows, [nT, KV, D] pre-RoPE: the given rows' (inputs
 * past_key.l / past_value.l of `nP` rows) then the computed rows' k, v [nQ, KV, D]; both
 * are graph outputs (present_key.l / present_value.l of `nT` rows). Returns [keys, values].
 */
export function givenThenFresh(g: ModelGraph, l: number, k: string, v: string, KV: number, D: number, nP: string, nT: string): [string, string] {
  const kAll = g.op('Concat', [g.input(`past_key.${l}`, g.cdt, [nP, KV, D]), k], { axis: 0 });
  const vAll = g.op('Concat', [g.input(`past_value.${l}`, g.cdt, [nP, KV, D]), v], { axis: 0 });
  g.output(kAll, `present_key.${l}`, g.cdt, [nT, KV, D]);
  g.output(vAll, `present_value.${l}`, g.cdt, [nT, KV, D]);
  return [kAll, vAll];
}
