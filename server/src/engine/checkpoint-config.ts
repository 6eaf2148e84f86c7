/**
 * config.json and preprocessor_config.json into the typed configs of `config.ts`: flat
 * (real Qwen checkpoints) and nested (transformers 5 `save_pretrained`) layouts, with the
 * per-family class defaults transformers applies to sparse vision configs.
 */
import type { ModelConfig, ModelFamily, PreprocessConfig, TextConfig, VisionConfig } from './config';
import { CheckpointError } from './errors';

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

  /** A positive integer (sizes, counts), at most `INT_BOUNDS[key]`. */
  int(key: string, v: unknown, fallback?: number): number {
    const max = INT_BOUNDS[key] ?? 2 ** 31 - 1;
    return this.take(key, v, fallback, (x) => Number.isSafeInteger(x) && (x as number) > 0 && (x as number) <= max,
      `a positive integer of at most ${max}`);
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

/**
 * Upper bounds on sizes and counts, checked before anything is allocated from them: a
 * config.json saying num_hidden_layers 1e9 used to spend 43 s and 2.7 GB building maps of
 * weight names before failing. Each bound is 8-100x the largest Qwen2/2.5-VL (72B: 80 layers,
 * hidden 8192, vocab 152064, 128k positions, a 32-block 1280-wide vision tower).
 */
const INT_BOUNDS: Readonly<Record<string, number>> = {
  'text.numLayers': 1024, 'text.hiddenSize': 65536, 'text.numHeads': 1024, 'text.numKvHeads': 1024, 'text.headDim': 4096,
  'text.intermediateSize': 1 << 20, 'text.vocabSize': 1 << 23, 'text.maxPositionEmbeddings': 1 << 24,
  'vision.depth': 1024, 'vision.embedDim': 65536, 'vision.numHeads': 1024, 'vision.outHidden': 65536, 'vision.mlpDim': 1 << 20,
  'vision.patchSize': 1024, 'vision.temporalPatchSize': 64, 'vision.spatialMergeSize': 64, 'vision.inChannels': 16,
  'vision.windowSize': 1 << 16,
  minPixels: 1 << 30, maxPixels: 1 << 30, patchSize: 1024, temporalPatchSize: 64, mergeSize: 64,
};

// ---------------------------------------------------------------------------------------
// config.json

/** A parsed config plus the keys (`text.hiddenSize`, …) that config.json set explicitly. */
export interface ParsedConfig {
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

export function parseConfig(raw: Json, generation: Json | undefined, source: string): ParsedConfig {
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
export function validateConfig(c: ModelConfig, source: string): void {
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
  // Pixels are divided by the std: 0 would give Infinity/NaN inputs and a garbage answer.
  const positive = (std: [number, number, number]): [number, number, number] => {
    if (std.some((x) => !(x > 0))) {
      throw new CheckpointError('InvalidConfig', `${source}: image_std must be 3 positive numbers, but it is ${JSON.stringify(std)}. ` +
        'Fix the file or re-download the model.', source);
    }
    return std;
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
    imageStd: positive(triple('image_std', p.image_std, [0.26862954, 0.26130258, 0.27577711])),
    rescaleFactor: f.num('rescaleFactor', p.rescale_factor, 1 / 255),
  };
}

// ---------------------------------------------------------------------------------------
// Weights
