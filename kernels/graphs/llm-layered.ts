/**
 * The layered language-model step graph: like the uniform step graph (llm.ts), but
 * every decoder layer computes its own subset of rows and is given its own rows, so
 * that a row can stop being computed after some layer and have its deeper keys/values
 * supplied from a cache (VLCache's layer-aware recomputation: a token "exits" at a
 * layer; subsets are nested and shrink with depth).
 *
 * Rows are indices into a per-run table of every row the run touches, sorted by
 * sequence row, so a smaller table index is an earlier row and the causal rule is
 * "key index <= query index". The table carries each row's M-RoPE positions; the
 * rotary cos/sin tables are built from it once per run, and every rotation looks its
 * rows up by table index.
 *
 * Inputs (batch is always 1 and is omitted; int32 unless said; nQ = rows computed at
 * layer 0, nQ<l> = rows computed at layer l, nP<l> = rows given at layer l):
 *   input_ids       [nQ]                 token ids of the layer-0 rows
 *   image_embeds    [nV, hidden] f32     (withImages) as in the uniform graph
 *   embed_source    [nQ]                 (withImages) as in the uniform graph
 *   all_positions   [3, nAll]            M-RoPE positions of every table row
 *   q_index         [nQ]                 table index of each layer-0 row, ascending
 *   keep.l          [nQ<l>]              l >= 1: indices into layer l-1's rows of those still
 *                                        computed at layer l, ascending (the others exit)
 *   past_index.l    [nP<l>]              table index of each given row of layer l (any order)
 *   past_key.l      [nP<l>, nKv, D] kv   pre-RoPE keys of those rows
 *   past_value.l    [nP<l>, nKv, D] kv
 *   logit_rows      [nL]                 (withLogits) indices into the last layer's rows
 * Outputs:
 *   logits          [nL, vocab] f32      (withLogits)
 *   present_key.l   [nP<l> + nQ<l>, nKv, D] kv   pre-RoPE, given rows first, then layer l's rows
 *   present_value.l [nP<l> + nQ<l>, nKv, D] kv
 * As in the uniform graph, no input may be zero-sized (WebGPU): a layer with no given
 * row is given one masked dummy row, a table row after every real row.
 *
 * Where the rows shrink: a row that exits at layer l+1 still needs layer l's keys and
 * values (other rows attend to them), but not layer l's query, attention output or
 * MLP, which only feed its own layer-(l+1) hidden state. So layer l projects k and v
 * for all its rows and gathers the queries and the residual stream down to layer
 * l+1's rows right after the projection; the last layer gathers them down to the
 * logit rows. Exiting thus saves compute from the layer before the exit.
 *
 * Cost over the uniform graph: 9 nodes more per layer (10 added, and the query
 * Reshape to [nQ, H, D] before rotation is not needed), all on index vectors or a
 * [nQ', nT<l>] mask except the two row Gathers:
 *   keys' table indices      Unsqueeze(past_index.l), Concat with the rows' indices, Cast to int64
 *   queries' table indices   Gather by keep, Cast to int64, Reshape to a column for the mask
 *   causal mask              LessOrEqual, Where (the uniform graph builds one mask for all layers)
 *   rows                     Gather of the queries and of the residual stream
 * and about 22 nodes fewer outside the layers (one rotary table instead of two, no
 * shared mask, no position concatenation). With 36 layers: about 300 more nodes.
 * Index vectors are int32 (WebGPU has no native int64); only RotaryEmbedding's position
 * ids are int64, as the operator requires.
 */
import type { TextConfig } from './config';
import { graphOpset, MASKED, ModelGraph, WeightLookup } from './common';
import { StepGraphOptions, attention, embedRows, finishLayer, givenThenFresh, lmHead, mropeAngles } from './llm-parts';

export function buildLayeredStepGraph(cfg: TextConfig, lookup: WeightLookup, opts: StepGraphOptions): Uint8Array {
  if (!opts.withPast) throw new Error('a layered step graph always takes given rows (withPast: true)');
  const g = new ModelGraph('qwen2-step-layered', lookup, opts);
  const { hiddenSize: Hd, numHeads: H, numKvHeads: KV, headDim: D } = cfg;
  const nLayers = Math.min(opts.maxLayers ?? cfg.numLayers, cfg.numLayers);
  const withLogits = opts.withLogits ?? true;

  const inputIds = g.input('input_ids', 'int32', ['nQ']);
  const allPos = g.input('all_positions', 'int32', [3, 'nAll']);
  const qIndex = g.input('q_index', 'int32', ['nQ']);
  const logitRows = withLogits ? g.input('logit_rows', 'int32', ['nL']) : '';

  // Residual stream x: [nQ<l>, Hd] float32 of the rows computed at the current layer.
  let x = embedRows(g, Hd, opts.withImages, inputIds);

  // Rotary cos/sin [nAll, D/2] (compute dtype) of every table row, shared by all layers.
  const rope = g.rotaryCache(mropeAngles(g, cfg, allPos));

  // Mask values in the dtype the attention adds them in: MultiHeadAttention's bias and ONNX
  // Attention's attn_mask are in the compute dtype (the Cast of a constant folds at load), the
  // manual scores are float32.
  const mhaMask = opts.attention !== 'manual';
  const open = mhaMask ? g.toCompute(g.f32(0)) : g.f32(0);
  const closed = mhaMask ? g.toCompute(g.f32(MASKED)) : g.f32(MASKED);

  // Table indices of the current layer's rows as a row vector [1, nQ<l>] (int32): it is
  // concatenated with the given rows' indices along axis 1 and gathered by keep lists.
  let rowIndex = g.op('Unsqueeze', [qIndex, g.i64([0])]);
  // h: the normed input [nQ<l>, Hd] of the current layer (compute dtype).
  let h = g.toCompute(g.rmsNorm(x, 'model.layers.0.input_layernorm.weight', cfg.rmsNormEps));
  for (let l = 0; l < nLayers; l++) {
    const p = `model.layers.${l}`;
    const last = l === nLayers - 1;
    g.scope(`layer${l}`, () => {
      const nP = `nP${l}`, nT = `nT${l}`;
      if (!withLogits && last) {
        // A headless graph's last layer: only its K/V are outputs, so project k and v alone.
        const [k0, v0] = g.fusedLinear(h, ['k_proj', 'v_proj'].map((n) => `${p}.self_attn.${n}`));
        givenThenFresh(g, l, g.reshape(k0, [-1, KV, D]), g.reshape(v0, [-1, KV, D]), KV, D, nP, nT);
        return;
      }
      const [q0, k0, v0] = g.fusedLinear(h, ['q_proj', 'k_proj', 'v_proj'].map((n) => `${p}.self_attn.${n}`));
      // [nQ<l>, KV, D] -> [nT<l>, KV, D] pre-RoPE, given rows first.
      const [kAll, vAll] = givenThenFresh(g, l, g.reshape(k0, [-1, KV, D]), g.reshape(v0, [-1, KV, D]), KV, D, nP, nT);
      // Table indices of the keys [1, nT<l>]: given rows, then this layer's rows.
      const pastIndex = g.input(`past_index.${l}`, 'int32', [nP]);
      const kvIndex = g.op('Concat', [g.op('Unsqueeze', [pastIndex, g.i64([0])]), rowIndex], { axis: 1 });

      // The rows whose queries this layer needs: the next layer's rows, or the logit rows.
      const pick = last ? logitRows : g.input(`keep.${l + 1}`, 'int32', [`nQ${l + 1}`]);
      const qIndexNext = g.op('Gather', [rowIndex, pick], { axis: 1 }); // [1, nQ']
      // Causal by table index: [1, 1, nQ', nT<l>], `open` where key index <= query index.
      const allowed = g.op('LessOrEqual', [kvIndex, g.reshape(qIndexNext, [1, 1, -1, 1])]);
      const mask = g.op('Where', [allowed, open, closed]);

      const q = g.op('Gather', [q0, pick], { axis: 0 }); // [nQ', H*D]
      const qr = g.reshape(g.rotateAt(g.reshape(q, [1, -1, H * D]), rope, g.cast(qIndexNext, 'int64'), H), [-1, H, D]);
      const kr = g.reshape(g.rotateAt(g.reshape(kAll, [1, -1, KV * D]), rope, g.cast(kvIndex, 'int64'), KV), [-1, KV, D]);
      const o = attention(g, cfg, qr, kr, vAll, mask); // [nQ', H*D]

      const next = finishLayer(g, cfg, l, g.op('Gather', [x, pick], { axis: 0 }), o, last ? undefined : l + 1);
      x = next.x;
      if (next.h) h = next.h;
      rowIndex = qIndexNext;
    });
  }

  // The last layer already reduced x to the logit rows [nL, Hd].
  if (withLogits) lmHead(g, cfg, x);
  return g.toModel({ opset: graphOpset(opts) });
}
