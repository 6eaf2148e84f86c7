/**
 * Opens a Hugging Face Qwen2-VL / Qwen2.5-VL model folder: parses its JSON files into the
 * typed configs of `config.ts`, indexes every weight by name from the safetensors headers
 * (no weight bytes are read), checks that the weights are complete and consistent, and
 * fingerprints the whole thing. Everything that can be wrong with a download is reported
 * here, before any graph is built, as a `CheckpointError` that says what to do.
 *
 * Sections: JSON field readers; config.json parsing (flat and nested layouts, class
 * defaults); reconciliation with the weight shapes; the expected weight list; file loading.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { ModelConfig, ModelFamily, PreprocessConfig, TextConfig, VisionConfig, WeightDtype } from './config';
import { CheckpointError, REDOWNLOAD_HINT } from './errors';
import { readSafetensorsHeader, type SafetensorsHeader, type TensorEntry } from './safetensors';

export type Json = Record<string, unknown>;

export function asObject(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

export const SUPPORTED_MODEL_TYPES: readonly ModelFamily[] = ['qwen2_vl', 'qwen2_5_vl'];

/** Typed readers for JSON fields that remember which config keys the file set explicitly. */
class Fields {
  readonly explicit = new Set<string>();
  constructor(private readonly source: string) {}

  private fail(key: string, v: unknown, want: string): never {
    const what = v === undefined ? 'missing' : `${JSON.stringify(v)}`;
    throw new CheckpointError('InvalidConfig',
      `${this.source}: ${key} must be ${want}, but it is ${what}. Fix the file or re-download the model.`, this.source);
  }

  private take<T>(key: string, v: unknown, fallback: T | undefined, ok: (x: unknown) => boolean, want: string): T {
    if (v === undefined || v === null) {
      if (fallback === undefined) this.fail(key, undefined, want);
      return fallback;
    }
    if (!ok(v)) this.fail(key, v, want);
    this.explicit.add(key);
    return v as T;
  }

  /** A positive integer (sizes, counts). */
  int(key: string, v: unknown, fallback?: number): number {
    return this.take(key, v, fallback, (x) => Number.isSafeInteger(x) && (x as number) > 0, 'a positive integer');
  }
  /** A non-negative integer (token ids, indexes). */
  id(key: string, v: unknown, fallback?: number): number {
    return this.take(key, v, fallback, (x) => Number.isSafeInteger(x) && (x as number) >= 0, 'a non-negative integer');
  }
  /** A positive finite number. */
  num(key: string, v: unknown, fallback?: number): number {
    return this.take(key, v, fallback, (x) => typeof x === 'number' && Number.isFinite(x) && x > 0, 'a positive number');
  }
  ids(key: string, v: unknown, fallback?: readonly number[]): number[] {
    const ok = (x: unknown) => Array.isArray(x) && x.every((i) => Number.isSafeInteger(i) && i >= 0);
    return [...this.take<readonly number[]>(key, v, fallback, ok, 'a list of non-negative integers')];
  }
  str(key: string, v: unknown, fallback?: string): string {
    return this.take(key, v, fallback, (x) => typeof x === 'string', 'a string');
  }
  bool(key: string, v: unknown, fallback?: boolean): boolean {
    return this.take(key, v, fallback, (x) => typeof x === 'boolean', 'true or false');
  }
}

// ---------------------------------------------------------------------------------------
// config.json

/** A parsed config plus the keys (`text.hiddenSize`, …) that config.json set explicitly. */
interface ParsedConfig {
  readonly config: ModelConfig;
  readonly explicit: ReadonlySet<string>;
  readonly warnings: readonly string[];
  readonly source: string;
}

/** The rope variants that are plain M-RoPE (5.x writes `rope_type: "default", type: "mrope"`). */
const MROPE_KINDS = new Set([undefined, 'default', 'mrope']);

function parseText(raw: Json, f: Fields, source: string): TextConfig {
  // transformers >= 5 nests text fields under text_config; real checkpoints keep them at
  // the top level. Reading text_config first and the top level second accepts both (and
  // the 4.5x files that carry both copies).
  const tc = asObject(raw.text_config) ?? {};
  const get = (k: string): unknown => tc[k] ?? raw[k];
  const ropeParams = asObject(tc.rope_parameters) ?? asObject(raw.rope_parameters);
  const ropeScaling = asObject(get('rope_scaling'));
  for (const kind of [ropeScaling?.type, ropeScaling?.rope_type, ropeParams?.type, ropeParams?.rope_type]) {
    if (!MROPE_KINDS.has(kind as string | undefined)) {
      throw new CheckpointError('InvalidConfig',
        `${source} asks for rope scaling ${JSON.stringify(kind)}; only plain M-RoPE is supported. Use an unmodified Qwen2-VL or Qwen2.5-VL checkpoint.`, source);
    }
  }
  // Counts that no weight shape reveals are required; widths default to the transformers
  // class defaults (the 72B sizes) and are then replaced by the weight shapes.
  const numHeads = f.int('text.numHeads', get('num_attention_heads'));
  const hiddenSize = f.int('text.hiddenSize', get('hidden_size'), 8192);
  const section = f.ids('text.mropeSection', ropeParams?.mrope_section ?? ropeScaling?.mrope_section, [16, 24, 24]);
  if (section.length !== 3) {
    throw new CheckpointError('InvalidConfig', `${source}: mrope_section must have 3 entries (t, h, w), got [${section.join(', ')}].`, source);
  }
  return {
    hiddenSize,
    numLayers: f.int('text.numLayers', get('num_hidden_layers')),
    numHeads,
    numKvHeads: f.int('text.numKvHeads', get('num_key_value_heads'), numHeads),
    headDim: f.int('text.headDim', get('head_dim'), Math.floor(hiddenSize / numHeads)),
    intermediateSize: f.int('text.intermediateSize', get('intermediate_size'), 29568),
    vocabSize: f.int('text.vocabSize', get('vocab_size'), 152064),
    rmsNormEps: f.num('text.rmsNormEps', get('rms_norm_eps'), 1e-5),
    ropeTheta: f.num('text.ropeTheta', ropeParams?.rope_theta ?? get('rope_theta'), 1e6),
    mropeSection: [section[0], section[1], section[2]],
    maxPositionEmbeddings: f.int('text.maxPositionEmbeddings', get('max_position_embeddings'), 32768),
    tieWordEmbeddings: f.bool('text.tieWordEmbeddings', raw.tie_word_embeddings ?? tc.tie_word_embeddings, false),
  };
}

function parseVision(family: ModelFamily, raw: Json, f: Fields): VisionConfig {
  // Real vision_configs are sparse, so these class defaults matter. `in_chans` and
  // `spatial_patch_size` are legacy keys transformers ignores; so do we.
  const v = asObject(raw.vision_config) ?? {};
  const common = {
    family,
    depth: f.int('vision.depth', v.depth, 32),
    numHeads: f.int('vision.numHeads', v.num_heads, 16),
    patchSize: f.int('vision.patchSize', v.patch_size, 14),
    temporalPatchSize: f.int('vision.temporalPatchSize', v.temporal_patch_size, 2),
    spatialMergeSize: f.int('vision.spatialMergeSize', v.spatial_merge_size, 2),
    inChannels: f.int('vision.inChannels', v.in_channels, 3),
    normEps: 1e-6,
  };
  if (family === 'qwen2_vl') {
    // Qwen2-VL: `embed_dim` is the ViT width and `hidden_size` is the merger output.
    const embedDim = f.int('vision.embedDim', v.embed_dim, 1280);
    const mlpRatio = f.num('vision.mlpRatio', v.mlp_ratio, 4);
    return {
      ...common, embedDim,
      mlpDim: Math.round(embedDim * mlpRatio),
      hiddenAct: f.str('vision.hiddenAct', v.hidden_act, 'quick_gelu'),
      outHidden: f.int('vision.outHidden', v.hidden_size, 3584),
      // Qwen2-VL has no window attention: every block attends over the whole image.
      windowSize: 0,
      fullAttBlockIndexes: [],
    };
  }
  // Qwen2.5-VL: `hidden_size` is the ViT width and `out_hidden_size` the merger output.
  return {
    ...common,
    embedDim: f.int('vision.embedDim', v.hidden_size, 3584),
    mlpDim: f.int('vision.mlpDim', v.intermediate_size, 3420),
    hiddenAct: f.str('vision.hiddenAct', v.hidden_act, 'silu'),
    outHidden: f.int('vision.outHidden', v.out_hidden_size, 3584),
    windowSize: f.int('vision.windowSize', v.window_size, 112),
    fullAttBlockIndexes: f.ids('vision.fullAttBlockIndexes', v.fullatt_block_indexes, [7, 15, 23, 31]),
  };
}

function parseConfig(raw: Json, generation: Json | undefined, source: string): ParsedConfig {
  const modelType = raw.model_type;
  if (!SUPPORTED_MODEL_TYPES.includes(modelType as ModelFamily)) {
    throw new CheckpointError('UnsupportedModelType',
      `${source} declares model_type ${JSON.stringify(modelType)}; supported model types are ` +
      `${SUPPORTED_MODEL_TYPES.map((t) => `"${t}"`).join(' and ')} (Qwen2-VL and Qwen2.5-VL, e.g. Qwen/Qwen2-VL-2B-Instruct ` +
      'or Qwen/Qwen2.5-VL-3B-Instruct).', source);
  }
  const family = modelType as ModelFamily;
  const f = new Fields(source);
  const warnings: string[] = [];
  const tc = asObject(raw.text_config) ?? {};
  const topId = (key: string, fallback: number, name: string) => f.id(name, raw[key] ?? tc[key], fallback);
  // generation_config.json decides when generation stops; config.json is the fallback.
  const eosRaw = generation?.eos_token_id ?? raw.eos_token_id ?? tc.eos_token_id;
  let eosTokenIds: number[];
  if (eosRaw === undefined || eosRaw === null) {
    eosTokenIds = [151645];
    warnings.push(`${source} and generation_config.json name no eos_token_id; stopping on <|im_end|> (151645).`);
  } else {
    eosTokenIds = [...new Set(f.ids('eosTokenIds', Array.isArray(eosRaw) ? eosRaw : [eosRaw]))];
  }
  const config: ModelConfig = {
    modelType: family,
    text: parseText(raw, f, source),
    vision: parseVision(family, raw, f),
    imageTokenId: topId('image_token_id', 151655, 'imageTokenId'),
    videoTokenId: topId('video_token_id', 151656, 'videoTokenId'),
    visionStartTokenId: topId('vision_start_token_id', 151652, 'visionStartTokenId'),
    visionEndTokenId: topId('vision_end_token_id', 151653, 'visionEndTokenId'),
    eosTokenIds,
  };
  return { config, explicit: f.explicit, warnings, source };
}

/** Checks relations between fields that no single field reader can see. */
function validateConfig(c: ModelConfig, source: string): void {
  const bad = (what: string): never => {
    throw new CheckpointError('InvalidConfig', `${source}: ${what}. Fix config.json or re-download the model.`, source);
  };
  const t = c.text;
  const v = c.vision;
  const sectionSum = t.mropeSection[0] + t.mropeSection[1] + t.mropeSection[2];
  if (sectionSum * 2 !== t.headDim) bad(`mrope_section [${t.mropeSection.join(', ')}] sums to ${sectionSum}, not head_dim / 2 = ${t.headDim / 2}`);
  if (t.numHeads % t.numKvHeads !== 0) bad(`num_attention_heads ${t.numHeads} is not a multiple of num_key_value_heads ${t.numKvHeads}`);
  if (v.embedDim % v.numHeads !== 0) bad(`the vision width ${v.embedDim} is not a multiple of its ${v.numHeads} heads`);
  if (v.outHidden !== t.hiddenSize) bad(`the vision merger outputs ${v.outHidden} features but the language model is ${t.hiddenSize} wide`);
  if (v.fullAttBlockIndexes.some((i) => i >= v.depth)) bad(`fullatt_block_indexes [${v.fullAttBlockIndexes.join(', ')}] exceed the vision depth ${v.depth}`);
}

/**
 * Parses config.json (flat or nested layout) with the per-family class defaults, without
 * looking at any weights. `generation` is generation_config.json, which supplies eos ids.
 * @throws CheckpointError `UnsupportedModelType` or `InvalidConfig`.
 */
export function parseModelConfig(raw: unknown, generation?: unknown, source = 'config.json'): ModelConfig {
  const obj = asObject(raw);
  if (!obj) throw new CheckpointError('InvalidConfig', `${source} does not contain a JSON object.`, source);
  const parsed = parseConfig(obj, asObject(generation), source);
  validateConfig(parsed.config, source);
  return parsed.config;
}

/**
 * Parses preprocessor_config.json; both `min_pixels`/`max_pixels` and the newer
 * `size: {shortest_edge, longest_edge}` spellings are accepted. An undefined input gives
 * the Qwen2-VL defaults. As in transformers, explicit min/max_pixels override `size`.
 */
export function parsePreprocessConfig(raw: unknown, source = 'preprocessor_config.json'): PreprocessConfig {
  const p = asObject(raw) ?? {};
  const size = asObject(p.size) ?? {};
  const f = new Fields(source);
  const triple = (key: string, v: unknown, fallback: readonly number[]): [number, number, number] => {
    const ok = Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
    if (v !== undefined && v !== null && !ok) {
      throw new CheckpointError('InvalidConfig', `${source}: ${key} must be a list of 3 numbers, but it is ${JSON.stringify(v)}.`, source);
    }
    const r = (ok ? v : fallback) as number[];
    return [r[0], r[1], r[2]];
  };
  const minPixels = f.int('minPixels', p.min_pixels ?? size.shortest_edge ?? size.min_pixels, 56 * 56);
  const maxPixels = f.int('maxPixels', p.max_pixels ?? size.longest_edge ?? size.max_pixels, 14 * 14 * 4 * 16384);
  if (minPixels > maxPixels) {
    throw new CheckpointError('InvalidConfig', `${source}: min_pixels ${minPixels} exceeds max_pixels ${maxPixels}.`, source);
  }
  return {
    minPixels,
    maxPixels,
    patchSize: f.int('patchSize', p.patch_size, 14),
    temporalPatchSize: f.int('temporalPatchSize', p.temporal_patch_size, 2),
    mergeSize: f.int('mergeSize', p.merge_size, 2),
    imageMean: triple('image_mean', p.image_mean, [0.48145466, 0.4578275, 0.40821073]),
    imageStd: triple('image_std', p.image_std, [0.26862954, 0.26130258, 0.27577711]),
    rescaleFactor: f.num('rescaleFactor', p.rescale_factor, 1 / 255),
  };
}

// ---------------------------------------------------------------------------------------
// Weights

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
function reconcileWithWeights(parsed: ParsedConfig, weights: ReadonlyMap<string, TensorEntry>): { config: ModelConfig; warnings: string[] } {
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

// ---------------------------------------------------------------------------------------
// Loading a folder

/** Sampling defaults from generation_config.json; absent fields were not set there. */
export interface GenerationDefaults {
  readonly doSample?: boolean;
  readonly temperature?: number;
  readonly topK?: number;
  readonly topP?: number;
  readonly repetitionPenalty?: number;
}

export interface Checkpoint {
  /** Absolute path of the model folder. */
  readonly dir: string;
  readonly config: ModelConfig;
  readonly preprocess: PreprocessConfig;
  /** Every tensor of every shard, keyed by its legacy name (`model.layers.*`, `visual.*`, `lm_head.weight`). */
  readonly weights: ReadonlyMap<string, TensorEntry>;
  /** The dtype most weights are stored in. */
  readonly weightDtype: WeightDtype;
  /** Hex sha256 over config.json, preprocessor_config.json and the safetensors headers. */
  readonly fingerprint: string;
  readonly tokenizerJson: Json;
  readonly tokenizerConfig: Json;
  /** The checkpoint's own chat template, or undefined when it ships none. */
  readonly chatTemplate: string | undefined;
  readonly generationConfig: GenerationDefaults;
  /**
   * True when a weight file is a symlink resolving outside the folder (HF hub cache
   * snapshots link to `../../blobs/…`). ONNX Runtime refuses external data through such
   * links, so the engine must copy or hard-link the files before referencing them.
   */
  readonly needsLocalCopy: boolean;
  /** Non-fatal findings worth a log line (defaults used, config values overridden by weights). */
  readonly warnings: readonly string[];
}

const HF_HINT = 'Point --model at a folder downloaded with `hf download Qwen/Qwen2-VL-2B-Instruct --local-dir <folder>`.';

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CheckpointError('InvalidConfig', `Cannot read ${file} (${(e as Error).message}). ${REDOWNLOAD_HINT}`, file);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError('InvalidConfig', `${file} is not valid JSON (${(e as Error).message}). ${REDOWNLOAD_HINT}`, file);
  }
}

function readJsonObject(file: string): Json {
  const v = asObject(readJsonFile(file));
  if (!v) throw new CheckpointError('InvalidConfig', `${file} does not contain a JSON object. ${REDOWNLOAD_HINT}`, file);
  return v;
}

function readOptionalJsonObject(file: string): Json | undefined {
  return fs.existsSync(file) ? readJsonObject(file) : undefined;
}

/** Lists the weight files and, for a sharded checkpoint, which file each tensor should be in. */
function weightFiles(dir: string): { files: string[]; weightMap?: Map<string, string> } {
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(indexFile)) {
    const map = asObject(readJsonObject(indexFile).weight_map);
    if (!map) throw new CheckpointError('InvalidConfig', `${indexFile} has no weight_map object. ${REDOWNLOAD_HINT}`, indexFile);
    const weightMap = new Map<string, string>();
    for (const [name, file] of Object.entries(map)) {
      if (typeof file !== 'string' || file.split(/[\\/]/).includes('..') || path.isAbsolute(file)) {
        throw new CheckpointError('InvalidConfig', `${indexFile} maps ${name} to an invalid file ${JSON.stringify(file)}. ${REDOWNLOAD_HINT}`, indexFile);
      }
      weightMap.set(name, file);
    }
    const files = [...new Set(weightMap.values())].sort();
    for (const f of files) {
      const full = path.join(dir, f);
      if (!fs.existsSync(full)) {
        throw new CheckpointError('ShardMissing',
          `${indexFile} lists ${f}, but ${full} does not exist: the download is incomplete. ${REDOWNLOAD_HINT}`, full);
      }
    }
    return { files, weightMap };
  }
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return { files: ['model.safetensors'] };
  if (isBrokenLink(single)) {
    throw new CheckpointError('ShardMissing',
      `${single} is a symlink whose target is missing (an interrupted hub download?). ${REDOWNLOAD_HINT}`, single);
  }
  const stray = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  const detail = stray.length > 0
    ? ` It has ${stray.join(', ')} but not the model.safetensors.index.json that says which tensor is where.`
    : ' Only .safetensors checkpoints are supported (not .bin, GGUF or ONNX exports).';
  throw new CheckpointError('NoWeights', `${dir} contains neither model.safetensors nor model.safetensors.index.json.${detail} ${REDOWNLOAD_HINT}`, dir);
}

function isBrokenLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/** True when `file` is a symlink (at any level) whose target lies outside `realDir`. */
function resolvesOutside(file: string, realDir: string): boolean {
  const rel = path.relative(realDir, fs.realpathSync(file));
  return rel.startsWith('..') || path.isAbsolute(rel);
}

function resolveChatTemplate(dir: string, tokenizerConfig: Json): string | undefined {
  // NOTE: the processor's template (chat_template.jinja, then chat_template.json) is what
  // transformers' AutoProcessor.apply_chat_template uses for multimodal prompts, so it wins
  // over the tokenizer's copy in tokenizer_config.json; in Qwen checkpoints they are equal.
  const jinjaFile = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinjaFile)) return fs.readFileSync(jinjaFile, 'utf8');
  const jsonFile = path.join(dir, 'chat_template.json');
  const fromJson = readOptionalJsonObject(jsonFile)?.chat_template;
  if (typeof fromJson === 'string') return fromJson;
  const t = tokenizerConfig.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    // The list form is [{name, template}]; the unnamed use case is called "default".
    const named = t.map(asObject).filter((x): x is Json => x !== undefined);
    const pick = named.find((x) => x.name === 'default') ?? named[0];
    if (pick && typeof pick.template === 'string') return pick.template;
  }
  return undefined;
}

function parseGenerationDefaults(g: Json | undefined): GenerationDefaults {
  if (!g) return {};
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  return {
    doSample: typeof g.do_sample === 'boolean' ? g.do_sample : undefined,
    temperature: num(g.temperature),
    topK: num(g.top_k),
    topP: num(g.top_p),
    repetitionPenalty: num(g.repetition_penalty),
  };
}

/** Hashes length-prefixed labelled chunks so that no two different inputs collide by concatenation. */
function fingerprintOf(chunks: readonly [string, Uint8Array][]): string {
  const h = createHash('sha256');
  h.update('vlcache-checkpoint-v1');
  for (const [label, bytes] of chunks) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(bytes.byteLength));
    h.update(label).update('\0').update(len).update(bytes);
  }
  return h.digest('hex');
}

/**
 * Loads and validates a model folder. Reads only JSON files and safetensors headers.
 * @throws CheckpointError with one of the codes in `errors.ts`; the message names the
 *   file and says how to fix it.
 */
export function loadCheckpoint(dirArg: string): Checkpoint {
  const dir = path.resolve(dirArg);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new CheckpointError('FolderMissing', `The model folder ${dir} does not exist or is not a folder. ${HF_HINT}`, dir);
  }
  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(configFile)) {
    throw new CheckpointError('NotAModelFolder', `${dir} is not a Hugging Face model folder: config.json is missing. ${HF_HINT}`, dir);
  }
  const configBytes = fs.readFileSync(configFile);
  const rawConfig = readJsonObject(configFile);
  const generationRaw = readOptionalJsonObject(path.join(dir, 'generation_config.json'));
  // Parsing first rejects unsupported model types before any weight file is opened.
  const parsed = parseConfig(rawConfig, generationRaw, configFile);

  const tokenizerFile = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokenizerFile)) {
    throw new CheckpointError('TokenizerMissing',
      `${dir} has no tokenizer.json. Download the complete model folder (it ships tokenizer.json): ${REDOWNLOAD_HINT}`, tokenizerFile);
  }
  const tokenizerJson = readJsonObject(tokenizerFile);
  const tokenizerConfig = readOptionalJsonObject(path.join(dir, 'tokenizer_config.json')) ?? {};

  const warnings: string[] = [...parsed.warnings];
  const preprocessFile = path.join(dir, 'preprocessor_config.json');
  const preprocessRaw = readOptionalJsonObject(preprocessFile);
  if (!preprocessRaw) warnings.push(`${preprocessFile} is missing; using the Qwen2-VL image preprocessing defaults.`);

  // Headers of every shard, then one name -> entry map under the legacy names.
  const { files, weightMap } = weightFiles(dir);
  const realDir = fs.realpathSync(dir);
  let needsLocalCopy = false;
  const headers: SafetensorsHeader[] = [];
  for (const f of files) {
    const full = path.join(dir, f);
    headers.push(readSafetensorsHeader(full));
    if (resolvesOutside(full, realDir)) needsLocalCopy = true;
  }
  const weights = new Map<string, TensorEntry>();
  for (const h of headers) {
    for (const t of h.tensors) {
      const legacy = normaliseWeightName(t.name);
      const prior = weights.get(legacy);
      if (prior) {
        throw new CheckpointError('DuplicateWeight',
          `${legacy} is stored twice (as ${prior.name} in ${path.basename(prior.file)} and as ${t.name} in ${path.basename(t.file)}). ` +
          `The folder mixes files from two downloads; ${REDOWNLOAD_HINT}`, t.file);
      }
      weights.set(legacy, t);
    }
  }
  if (weightMap) {
    for (const [name, f] of weightMap) {
      const entry = weights.get(normaliseWeightName(name));
      const full = path.join(dir, f);
      if (!entry || entry.file !== full) {
        throw new CheckpointError('WeightNotInShard',
          `model.safetensors.index.json says ${name} is in ${f}, but that file does not contain it: the shard is incomplete or from another download. ${REDOWNLOAD_HINT}`, full);
      }
    }
  }

  const reconciled = reconcileWithWeights(parsed, weights);
  warnings.push(...reconciled.warnings);
  const config = reconciled.config;
  const preprocess = parsePreprocessConfig(preprocessRaw, preprocessFile);
  checkPreprocessAgainstModel(preprocess, config, preprocessFile);
  const unused = checkWeights(config, weights, dir);
  if (unused.length > 0) {
    warnings.push(`${unused.length} tensors in the checkpoint are not used by the model (e.g. ${unused.slice(0, 3).join(', ')}).`);
  }

  const dtypeCounts = new Map<WeightDtype, number>();
  for (const t of weights.values()) dtypeCounts.set(t.dtype, (dtypeCounts.get(t.dtype) ?? 0) + 1);
  const weightDtype = [...dtypeCounts.entries()].sort((a, b) => b[1] - a[1])[0][0];

  const preprocessBytes = preprocessRaw ? fs.readFileSync(preprocessFile) : new Uint8Array(0);
  const fingerprint = fingerprintOf([
    ['config.json', configBytes],
    ['preprocessor_config.json', preprocessBytes],
    ...headers.map((h): [string, Uint8Array] => [path.relative(dir, h.file), h.headerBytes]),
  ]);

  return {
    dir, config, preprocess, weights, weightDtype, fingerprint, tokenizerJson, tokenizerConfig,
    chatTemplate: resolveChatTemplate(dir, tokenizerConfig),
    generationConfig: parseGenerationDefaults(generationRaw),
    needsLocalCopy,
    warnings,
  };
}

function checkPreprocessAgainstModel(p: PreprocessConfig, c: ModelConfig, file: string): void {
  const v = c.vision;
  if (p.patchSize !== v.patchSize || p.temporalPatchSize !== v.temporalPatchSize || p.mergeSize !== v.spatialMergeSize) {
    throw new CheckpointError('InvalidConfig',
      `${file} uses patch ${p.patchSize}, temporal ${p.temporalPatchSize}, merge ${p.mergeSize}, but the vision weights need ` +
      `${v.patchSize}, ${v.temporalPatchSize}, ${v.spatialMergeSize}. The file belongs to another model; ${REDOWNLOAD_HINT}`, file);
  }
}

/**
 * Checks every weight the config requires for presence and shape.
 * @returns names of tensors the model does not use.
 */
function checkWeights(config: ModelConfig, weights: ReadonlyMap<string, TensorEntry>, dir: string): string[] {
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
