/**
 * Opens a Hugging Face Qwen2-VL / Qwen2.5-VL model folder: parses its JSON files into the
 * typed configs of `config.ts`, indexes every weight by name from the safetensors headers
 * (only the ends of each tensor are read, for the fingerprint), checks that the weights are
 * complete and consistent, and fingerprints the whole thing. Everything that can be wrong with a download is reported
 * here, before any graph is built, as a `CheckpointError` that says what to do.
 *
 * Config parsing lives in checkpoint-config.ts, the weight list and checks in
 * checkpoint-weights.ts; this file loads a folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { ModelConfig, PreprocessConfig, WeightDtype } from './config';
import { Json, asObject, parseConfig, parsePreprocessConfig } from './checkpoint-config';
import { checkWeights, normaliseWeightName, reconcileWithWeights } from './checkpoint-weights';
export { SUPPORTED_MODEL_TYPES, asObject, parseModelConfig, parsePreprocessConfig } from './checkpoint-config';
export type { Json } from './checkpoint-config';
export { expectedWeightShapes, normaliseWeightName } from './checkpoint-weights';
import { CheckpointError, REDOWNLOAD_HINT } from './errors';
import { readRegularFile, readRegularText } from './regular-file';
import { readSafetensorsHeader, tensorEdgeSamples, type SafetensorsHeader, type TensorEntry } from './safetensors';

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
  /**
   * Hex sha256 over config.json, preprocessor_config.json, the safetensors headers and
   * the first and last 4 KiB of every tensor (other weights, other fingerprint; the key
   * of every cache entry and calibrated schedule).
   */
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

/** The largest JSON file of a model folder that is read (Qwen's tokenizer.json is 7 MB). */
const MAX_JSON_BYTES = 64 << 20;

/** A small file of the model folder: regular files only (a FIFO or device would hang the load). */
function readModelFile(file: string): Buffer {
  try {
    return readRegularFile(file, { maxBytes: MAX_JSON_BYTES });
  } catch (e) {
    throw new CheckpointError('InvalidConfig', `Cannot read ${file} (${(e as Error).message}). ${REDOWNLOAD_HINT}`, file);
  }
}

function readModelText(file: string): string {
  return readModelFile(file).toString('utf8');
}

function parseJsonObject(text: string, file: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError('InvalidConfig', `${file} is not valid JSON (${(e as Error).message}). ${REDOWNLOAD_HINT}`, file);
  }
  const o = asObject(v);
  if (!o) throw new CheckpointError('InvalidConfig', `${file} does not contain a JSON object. ${REDOWNLOAD_HINT}`, file);
  return o;
}

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readRegularText(file, { maxBytes: MAX_JSON_BYTES });
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
  if (fs.existsSync(jinjaFile)) return readModelText(jinjaFile);
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
  h.update('vlcache-checkpoint-v2');
  for (const [label, bytes] of chunks) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(bytes.byteLength));
    h.update(label).update('\0').update(len).update(bytes);
  }
  return h.digest('hex');
}

/**
 * Loads and validates a model folder. Reads the JSON files, the safetensors headers and the
 * first and last 4 KiB of each tensor (for the fingerprint), never the whole weights.
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
  // One read: the bytes that are fingerprinted are the bytes that are parsed.
  const configBytes = readModelFile(configFile);
  const rawConfig = parseJsonObject(configBytes.toString('utf8'), configFile);
  const generationRaw = readOptionalJsonObject(path.join(dir, 'generation_config.json'));
  // Parsing first rejects unsupported model types before any weight file is opened.
  const parsed = parseConfig(rawConfig, generationRaw, configFile);

  const tokenizerFile = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokenizerFile)) {
    throw new CheckpointError('TokenizerMissing',
      `${dir} has no tokenizer.json. Download the complete model folder (it ships tokenizer.json): ${REDOWNLOAD_HINT}`, tokenizerFile);
  }
  const tokenizerJson = readJsonObject(tokenizerFile);
  const tokModel = asObject(tokenizerJson.model);
  if (!tokModel || typeof tokModel.type !== 'string' || !asObject(tokModel.vocab) && !Array.isArray(tokModel.vocab)) {
    throw new CheckpointError('InvalidConfig',
      `${tokenizerFile} has no tokenizer model (a "model" object with a type and a vocab): it is not a Hugging Face tokenizers file. ${REDOWNLOAD_HINT}`,
      tokenizerFile);
  }
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

  const preprocessBytes = preprocessRaw ? readModelFile(preprocessFile) : new Uint8Array(0);
  const fingerprint = fingerprintOf([
    ['config.json', configBytes],
    ['preprocessor_config.json', preprocessBytes],
    ...headers.flatMap((h): [string, Uint8Array][] => [
      [path.relative(dir, h.file), h.headerBytes],
      [`${path.relative(dir, h.file)}#edges`, tensorEdgeSamples(h)],
    ]),
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
