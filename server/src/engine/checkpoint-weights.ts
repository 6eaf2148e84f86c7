/**
 * The weights side of a checkpoint: legacy names, the full list of weights a config needs
 * with their shapes, reconciling config widths with the weight shapes, and the check that
 * every needed weight is present with its shape.
 */
import * as path from 'node:path';
import type { ModelConfig } from './config';
import { CheckpointError, REDOWNLOAD_HINT } from './errors';
import type { TensorEntry } from './safetensors';
import { validateConfig, type ParsedConfig } from './checkpoint-config';

/**
 * Maps a stored tensor name to its legacy checkpoint name. Recent transformers hold the
 * model as `model.language_model.*` / `model.visual.*` and some exporters save those
 * in-memory names; Qwen's own checkpoints use `model.*` / `visual.*`.
 */
export function normaliseWeightName(name: string): string {
  if (name.startsWith('model.language_model.')) return 'model.' + name.slice('model.language_model.'.length);
  if (name.startsWith('model.visual.')) return name.slice('model.'.length);
  return name;
}

/**
 * Replaces config widths with the ones the weight shapes imply.
 * NOTE: the weights are what the graphs are built from, and real config.json files are
 * sparse (Qwen2-VL-7B has no vision hidden_size; a missing Qwen2.5-VL out_hidden_size
 * defaults to 3584 even for the 2048-wide 3B). A disagreement with a value config.json set
 * explicitly is reported as a warning; a replaced class default is silent.
 */
export function reconcileWithWeights(parsed: ParsedConfig, weights: ReadonlyMap<string, TensorEntry>): { config: ModelConfig; warnings: string[] } {
  const warnings: string[] = [];
  const text = { ...parsed.config.text };
  const vision = { ...parsed.config.vision };
  const shape = (name: string, rank: number) => {
    const s = weights.get(name)?.shape;
    return s && s.length === rank ? s : undefined;
  };
  const take = (key: string, current: number, fromWeights: number | undefined, weight: string): number => {
    if (fromWeights === undefined || !Number.isSafeInteger(fromWeights) || fromWeights <= 0 || fromWeights === current) return current;
    if (parsed.explicit.has(key)) {
      warnings.push(`${parsed.source} sets ${key} = ${current}, but ${weight} implies ${fromWeights}; using ${fromWeights}.`);
    }
    return fromWeights;
  };

  const embed = shape('model.embed_tokens.weight', 2); // [vocab, hidden]
  text.vocabSize = take('text.vocabSize', text.vocabSize, embed?.[0], 'model.embed_tokens.weight');
  text.hiddenSize = take('text.hiddenSize', text.hiddenSize, embed?.[1], 'model.embed_tokens.weight');
  const q = shape('model.layers.0.self_attn.q_proj.weight', 2); // [numHeads * headDim, hidden]
  if (q && q[0] % text.numHeads === 0) text.headDim = take('text.headDim', text.headDim, q[0] / text.numHeads, 'q_proj.weight');
  const k = shape('model.layers.0.self_attn.k_proj.weight', 2); // [numKvHeads * headDim, hidden]
  if (k && k[0] % text.headDim === 0) text.numKvHeads = take('text.numKvHeads', text.numKvHeads, k[0] / text.headDim, 'k_proj.weight');
  const gate = shape('model.layers.0.mlp.gate_proj.weight', 2); // [intermediate, hidden]
  text.intermediateSize = take('text.intermediateSize', text.intermediateSize, gate?.[0], 'mlp.gate_proj.weight');

  const patch = shape('visual.patch_embed.proj.weight', 5); // [embedDim, C, T, P, P]
  if (patch) {
    vision.embedDim = take('vision.embedDim', vision.embedDim, patch[0], 'visual.patch_embed.proj.weight');
    vision.inChannels = take('vision.inChannels', vision.inChannels, patch[1], 'visual.patch_embed.proj.weight');
    vision.temporalPatchSize = take('vision.temporalPatchSize', vision.temporalPatchSize, patch[2], 'visual.patch_embed.proj.weight');
    vision.patchSize = take('vision.patchSize', vision.patchSize, patch[3], 'visual.patch_embed.proj.weight');
  }
  const fc1Name = vision.family === 'qwen2_vl' ? 'visual.blocks.0.mlp.fc1.weight' : 'visual.blocks.0.mlp.gate_proj.weight';
  vision.mlpDim = take('vision.mlpDim', vision.mlpDim, shape(fc1Name, 2)?.[0], fc1Name); // [mlpDim, embedDim]
  const m0 = shape('visual.merger.mlp.0.weight', 2); // [embedDim * merge^2, embedDim * merge^2]
  if (m0) {
    const merge = Math.sqrt(m0[1] / vision.embedDim);
    vision.spatialMergeSize = take('vision.spatialMergeSize', vision.spatialMergeSize, merge, 'visual.merger.mlp.0.weight');
  }
  const m2 = shape('visual.merger.mlp.2.weight', 2); // [outHidden, embedDim * merge^2]
  vision.outHidden = take('vision.outHidden', vision.outHidden, m2?.[0], 'visual.merger.mlp.2.weight');

  const config: ModelConfig = { ...parsed.config, text, vision };
  validateConfig(config, parsed.source);
  return { config, warnings };
}

/**
 * Every weight the model needs, by legacy name, with its shape. Linear weights are
 * [out, in]. `lm_head.weight` is expected only when the embeddings are not tied.
 */
export function expectedWeightShapes(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const t = c.text;
  const H = t.hiddenSize;
  const qDim = t.numHeads * t.headDim;
  const kvDim = t.numKvHeads * t.headDim;
  m.set('model.embed_tokens.weight', [t.vocabSize, H]);
  for (let i = 0; i < t.numLayers; i++) {
    const p = `model.layers.${i}.`;
    m.set(p + 'input_layernorm.weight', [H]);
    m.set(p + 'post_attention_layernorm.weight', [H]);
    m.set(p + 'self_attn.q_proj.weight', [qDim, H]);
    m.set(p + 'self_attn.q_proj.bias', [qDim]);
    for (const kv of ['k', 'v']) {
      m.set(p + `self_attn.${kv}_proj.weight`, [kvDim, H]);
      m.set(p + `self_attn.${kv}_proj.bias`, [kvDim]);
    }
    m.set(p + 'self_attn.o_proj.weight', [H, qDim]);
    m.set(p + 'mlp.gate_proj.weight', [t.intermediateSize, H]);
    m.set(p + 'mlp.up_proj.weight', [t.intermediateSize, H]);
    m.set(p + 'mlp.down_proj.weight', [H, t.intermediateSize]);
  }
  m.set('model.norm.weight', [H]);
  if (!t.tieWordEmbeddings) m.set('lm_head.weight', [t.vocabSize, H]);

  const v = c.vision;
  const E = v.embedDim;
  const M = v.mlpDim;
  const qwen2 = v.family === 'qwen2_vl'; // LayerNorm with bias and fc1/fc2; 2.5 has RMSNorm and SwiGLU.
  const norm = (name: string) => {
    m.set(name + '.weight', [E]);
    if (qwen2) m.set(name + '.bias', [E]);
  };
  const linear = (name: string, out: number, inp: number) => {
    m.set(name + '.weight', [out, inp]);
    m.set(name + '.bias', [out]);
  };
  m.set('visual.patch_embed.proj.weight', [E, v.inChannels, v.temporalPatchSize, v.patchSize, v.patchSize]);
  for (let j = 0; j < v.depth; j++) {
    const p = `visual.blocks.${j}.`;
    norm(p + 'norm1');
    norm(p + 'norm2');
    linear(p + 'attn.qkv', 3 * E, E);
    linear(p + 'attn.proj', E, E);
    if (qwen2) {
      linear(p + 'mlp.fc1', M, E);
      linear(p + 'mlp.fc2', E, M);
    } else {
      linear(p + 'mlp.gate_proj', M, E);
      linear(p + 'mlp.up_proj', M, E);
      linear(p + 'mlp.down_proj', E, M);
    }
  }
  const merged = E * v.spatialMergeSize * v.spatialMergeSize;
  norm('visual.merger.ln_q');
  linear('visual.merger.mlp.0', merged, merged);
  linear('visual.merger.mlp.2', v.outHidden, merged);
  return m;
}

/**
 * Checks every weight the config requires for presence and shape.
 * @returns names of tensors the model does not use.
 */
export function checkWeights(config: ModelConfig, weights: ReadonlyMap<string, TensorEntry>, dir: string): string[] {
  const expected = expectedWeightShapes(config);
  const missing: string[] = [];
  for (const [name, shape] of expected) {
    const t = weights.get(name);
    if (!t) {
      missing.push(name);
    } else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new CheckpointError('ShapeMismatch',
        `${name} in ${path.basename(t.file)} has shape [${t.shape.join(', ')}] but config.json implies [${shape.join(', ')}]. ` +
        `config.json and the weights come from different models; ${REDOWNLOAD_HINT}`, t.file);
    }
  }
  if (missing.length > 0) {
    throw new CheckpointError('MissingWeights',
      `The checkpoint in ${dir} lacks ${missing.length} of the ${expected.size} weights its config requires ` +
      `(e.g. ${missing.slice(0, 5).join(', ')}). The download is incomplete or is not a ${config.modelType} model. ${REDOWNLOAD_HINT}`, dir);
  }
  // A tied checkpoint may still carry lm_head.weight; it is simply ignored.
  return [...weights.keys()].filter((n) => !expected.has(n) && n !== 'lm_head.weight');
}
