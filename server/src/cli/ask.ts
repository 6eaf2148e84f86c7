/** `vlcache ask` and the demo. */
import { FileRefusedError, readRegularFile } from '../engine/regular-file';
import { performance } from 'node:perf_hooks';
import { AskResult, Generator } from '../ask/generate';
import type { DeviceRequest } from '../engine/ort';
import { InputError } from './errors';
import { writeJson } from './json';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { cacheRoot } from '../engine/graph-files';
import type { Mode } from '../planner/plan';
import { reuseFor } from '../ask/vlcache';
import { loadModel } from '../ask/load-model';
import { recomputeFor } from '../planner/recompute';
import { openStore } from './store';
import { builtinModelDir, demoImage } from '../paths';

export interface AskArgs {
  demo?: boolean;
  model?: string;
  images?: string[];
  question?: string;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  device?: DeviceRequest;
  precision?: 'auto' | 'fp32' | 'fp16';
  kvArena?: 'auto' | 'on' | 'off';
  kvArenaRows?: number;
  json?: boolean;
  ignoreEos?: boolean;
  mode?: Mode;
  ratio?: number;
  epicK?: number;
  /** The workspace cache directory; default: one per working directory under the vlcache cache root. */
  cacheDir?: string;
  noCache?: boolean;
}

export function readImage(path: string): Uint8Array {
  try {
    // One descriptor, a regular file only: a FIFO or /dev/zero would hang or never end.
    return readRegularFile(path, { maxBytes: 256 << 20 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${path}: no such image file; check the --image path`
      : e instanceof FileRefusedError ? e.message : `${path}: cannot read the image (${code})`);
  }
}

/** One cache directory per working directory (the CLI's notion of a workspace). */
export function defaultCacheDir(): string {
  return join(cacheRoot(), 'workspaces', createHash('sha256').update(process.cwd()).digest('hex').slice(0, 16));
}

export async function runAsk(args: AskArgs): Promise<number> {
  const demo = args.demo ?? false;
  const modelDir = args.model ?? builtinModelDir();
  const images = demo ? [demoImage()] : args.images ?? [];
  // The built-in model is trained on short synthetic questions (test/reference/synthetic.py): it answers in a word.
  const question = demo ? 'How many boxes are there?' : args.question!;
  const log = (m: string) => { if (!args.json) console.error(m); };

  const tLoad = performance.now();
  // A calibrated layer schedule (`vlcache calibrate`) replaces the uniform ratio in vlcache mode
  // unless --ratio is given (planner/recompute.ts); it runs on the layered step graph.
  const mode = args.mode ?? (args.noCache ? 'full' : 'vlcache');
  const { model, schedule } = await loadModel(modelDir, { device: args.device ?? 'auto', precision: args.precision, kvArena: args.kvArena, kvArenaRows: args.kvArenaRows, log,
    reuse: args.noCache ? undefined : { mode, ratio: args.ratio } });
  const ckpt = model.checkpoint;
  if (schedule) log(`layer schedule: ${schedule.ratios.map((r) => r.toFixed(3)).join(', ')} (${schedule.source})`);
  const loadMs = performance.now() - tLoad;
  log(`device: ${model.device}${model.fallbackReasons.length ? ` (skipped ${model.fallbackReasons.join('; ')})` : ''}`);
  if (demo) {
    log(`model: ${modelDir} (built-in 6.5M-parameter Qwen2-VL trained on synthetic diagrams, UI mockups, bar charts and ` +
      'labels: it answers short questions about such images, one word or number; use --model for a real Qwen2-VL)');
    log(`image: ${images[0]}\nquestion: ${question}\n`);
  }

  const store = args.noCache ? undefined : openStore(args.cacheDir ?? defaultCacheDir(), ckpt.fingerprint, { log });
  const gen = new Generator(model, log, reuseFor(model, store?.store));
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  let result: AskResult;
  try {
    result = await gen.ask({
      images: images.map((p) => ({ name: p, bytes: readImage(p) })),
      question,
      maxTokens: args.maxTokens ?? (demo ? 48 : 256),
      sampling: { temperature: args.temperature, topP: args.topP, seed: args.seed },
      ignoreEos: args.ignoreEos,
      ...recomputeFor(mode, args.ratio, schedule),
      epicK: args.epicK,
      onText: args.json ? undefined : (d) => process.stdout.write(d),
      signal: controller.signal,
    });
  } finally {
    process.off('SIGINT', onSigint);
    await store?.close();
    await model.dispose();
  }
  if (args.json) {
    writeJson({ ...result, model: modelDir, loadMs: round(loadMs) }); // the documented snake_case names
  } else {
    process.stdout.write('\n');
    const t = result.timings;
    log(`\n[${result.device}] load ${round(loadMs)} ms | preprocess ${round(t.preprocessMs)} ms | vision ${round(t.visionMs)} ms | ` +
      `prefill ${round(t.prefillMs)} ms | TTFT ${round(t.ttftMs)} ms | decode ${round(t.decodeTokensPerS)} tok/s | ` +
      `${result.promptTokenIds.length} prompt tokens, ${result.tokenIds.length} generated (${result.stopReason})`);
    const c = result.cache;
    log(`[cache ${c.mode}] encoder ${c.encoderHits} hit / ${c.encoderMisses} miss | image KV ${c.kvHits} hit | ` +
      `computed ${c.tokensComputed}/${c.tokensTotal} rows (prefix ${c.prefixTokensReused}, image ${c.imageTokensReused} reused)` +
      `${c.probeMs > 0 ? ` | probe ${round(c.probeMs)} ms` : ''}${c.tier.length ? ` | from ${c.tier.join(', ')}` : ''}`);
  }
  return 0;
}

const round = (x: number) => Math.round(x * 10) / 10;
