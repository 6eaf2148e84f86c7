/**
 * Builds throw-away model folders for the checkpoint tests: a config.json fixture, the tiny
 * fixture tokenizer, and safetensors files holding every weight the config requires.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { WeightDtype } from '../../../server/src/engine/config';
import { expectedWeightShapes, parseModelConfig } from '../../../server/src/engine/checkpoint';
import { encodeFromF32, encodeSafetensorsHeader, writeSafetensors, type TensorToWrite } from '../../../server/src/engine/safetensors';
import * as assert from 'node:assert/strict';
import { CheckpointError } from '../../../server/src/engine/errors';

export const FIXTURES = path.join(__dirname, 'fixtures');

export function readFixture(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8')) as Record<string, unknown>;
}

const made: string[] = [];
process.on('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary folder, removed when the process exits. */
export function tempDir(prefix = 'vlcache-ckpt-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export interface FolderOptions {
  /** Store names as `model.language_model.*` / `model.visual.*` instead of the legacy names. */
  readonly inMemoryNames?: boolean;
  /** Split the weights over this many shards with an index (default: one model.safetensors). */
  readonly shards?: number;
  readonly dtype?: WeightDtype;
  /** Legacy names to leave out. */
  readonly omit?: readonly string[];
  /** Extra tensors (e.g. lm_head.weight in a tied checkpoint), by legacy name. */
  readonly extra?: Readonly<Record<string, number[]>>;
  /** Replace the shapes of these weights (legacy names). */
  readonly shapes?: Readonly<Record<string, number[]>>;
  readonly generationConfig?: Record<string, unknown>;
  readonly preprocessorConfig?: Record<string, unknown> | null;
  readonly tokenizerConfig?: Record<string, unknown>;
}

function toStoredName(legacy: string, inMemory: boolean): string {
  if (!inMemory) return legacy;
  if (legacy.startsWith('model.')) return 'model.language_model.' + legacy.slice('model.'.length);
  if (legacy.startsWith('visual.')) return 'model.' + legacy;
  return legacy;
}

/** Deterministic small values, exactly representable in BF16 and F16 (multiples of 1/16). */
function pattern(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (((i * 7 + seed) % 17) - 8) / 16;
  return out;
}

/** Writes a model folder whose weights exactly match `config` (adjusted by `opts`). */
export function writeModelFolder(dir: string, config: Record<string, unknown>, opts: FolderOptions = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  fs.copyFileSync(path.join(FIXTURES, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'),
    JSON.stringify(opts.tokenizerConfig ?? readFixture('tokenizer_config.json')));
  if (opts.preprocessorConfig !== null) {
    fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify(opts.preprocessorConfig ?? {
      min_pixels: 3136, max_pixels: 12845056, patch_size: 14, temporal_patch_size: 2, merge_size: 2,
      image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711],
      image_processor_type: 'Qwen2VLImageProcessor', processor_class: 'Qwen2VLProcessor',
    }));
  }
  if (opts.generationConfig) fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify(opts.generationConfig));

  const shapes = expectedWeightShapes(parseModelConfig(config));
  for (const [name, shape] of Object.entries(opts.extra ?? {})) shapes.set(name, shape);
  for (const [name, shape] of Object.entries(opts.shapes ?? {})) shapes.set(name, shape);
  for (const name of opts.omit ?? []) shapes.delete(name);
  const dtype = opts.dtype ?? 'BF16';
  const tensors: TensorToWrite[] = [...shapes].map(([name, shape], i) => ({
    name: toStoredName(name, opts.inMemoryNames ?? false),
    dtype,
    shape,
    data: encodeFromF32(pattern(shape.reduce((a, b) => a * b, 1), i), dtype),
  }));
  const nShards = opts.shards ?? 1;
  if (nShards === 1) {
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    return;
  }
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(tensors.length / nShards);
  for (let s = 0; s < nShards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(nShards).padStart(5, '0')}.safetensors`;
    const part = tensors.slice(s * per, (s + 1) * per);
    for (const t of part) weightMap[t.name] = file;
    writeSafetensors(path.join(dir, file), part, { format: 'pt' });
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }, null, 2));
}

/**
 * Writes a full-size checkpoint as a sparse file: a real header followed by a hole of the
 * right length. It costs no disk space yet passes every header and size check.
 */
export function writeSparseModelFolder(dir: string, config: Record<string, unknown>): void {
  writeModelFolder(dir, { ...readFixture('tiny-qwen2-vl-nested.config.json') });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const shapes = expectedWeightShapes(parseModelConfig(config));
  const { header, dataLength } = encodeSafetensorsHeader(
    [...shapes].map(([name, shape]) => ({ name, dtype: 'BF16' as const, shape })), { format: 'pt' });
  const file = path.join(dir, 'model.safetensors');
  fs.writeFileSync(file, header);
  fs.truncateSync(file, header.length + dataLength);
}

/** Asserts that `fn` throws a CheckpointError with `code` whose message contains every fragment. */
export function rejects(fn: () => unknown, code: string, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${String(e)}`);
    assert.equal(e.code, code);
    for (const f of fragments) assert.ok(e.message.includes(f), `message lacks ${JSON.stringify(f)}: ${e.message}`);
    return true;
  });
}
