/**
 * `vlcache bench`: how fast a repeated question about an image is, by cache path.
 *
 * Scenario: the image was seen once (W: the image first, "Describe the image.");
 * now it is asked about after a different prefix (T: a different system prompt
 * and question). Runs, each the median of --runs measurements after one warm-up:
 *   full     T on an empty cache (cold: preprocess, vision, full prefill)
 *   prefix   T after W with exact-prefix reuse only (the encoder cache hits too)
 *   repeat   T asked again, word for word (exact-prefix reuse: every prompt row but the last is cached)
 *   vlcache  T after W with VLCache reuse at --ratio
 *   vlcache_device (GPU only) the same once the image's KV is already in the device tier
 *   disk     T in a NEW process whose cache holds only what W wrote to disk
 * Then decode tokens/s of the step graph and of the KV arena (engine/kv-arena.ts) on the same request.
 * First, image preprocessing time per image size (bench-preprocess.ts; no model needed): with
 * --preprocess only that section runs (no GPU, no model load).
 * Prints tables, or with --json one object {preprocess: [...], runs: {...}, speedup: {...}}. With
 * --compare FILE (test/bench/hf_ttft.py output) transformers' figures go beside.
 * Never fails on speed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '../engine/checkpoint';
import { benchPreprocess, preprocessTable } from './bench-preprocess';
import { ATTENTION_KINDS, type AttentionKind, VlModel } from '../engine/model';
import { cudaMemoryInUse, type DeviceRequest } from '../engine/ort';
import { AskRequest, AskResult, Generator, ImageInput } from '../ask/generate';
import { MapStore } from '../cache/map-store';
import type { Mode } from '../planner/plan';
import type { EntryStore } from '../cache/store';
import { modelShape, reuseFor } from '../ask/vlcache';
import { DeviceKv } from '../engine/kv-device';
import { readImage } from './ask';
import { openStore } from './store';
import { builtinModelDir, demoImage } from '../paths';

interface Run {
  ttft_ms: number;
  tokens_computed: number;
  tokens_total: number;
  vision_ms: number;
  prefill_ms: number;
  preprocess_ms: number;
  decode_tokens_per_s: number;
  recompute_fraction?: number;
  first_token_kl?: number;
  tiers?: string[];
  assemble_ms?: number;
}

const SYSTEM_T = 'You are a senior engineer reviewing an architecture diagram for a pull request.';
const QUESTION_T = 'Which component should be split first, and why?';

export async function runBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, image: { type: 'string' }, device: { type: 'string' }, precision: { type: 'string' },
      attention: { type: 'string' }, runs: { type: 'string' }, ratio: { type: 'string' }, 'max-tokens': { type: 'string' },
      compare: { type: 'string' }, json: { type: 'boolean' }, preprocess: { type: 'boolean' },
      // Internal: the restarted process of the disk run.
      'disk-child': { type: 'string' },
    },
  });
  if (values.attention !== undefined && !(ATTENTION_KINDS as readonly string[]).includes(values.attention)) {
    console.error(`vlcache bench: --attention must be one of ${ATTENTION_KINDS.join(', ')}, not "${values.attention}"`);
    return 2;
  }
  const modelDir = values.model ?? builtinModelDir();
  const imagePath = values.image ?? demoImage();
  const runs = Number(values.runs ?? 3);
  const ratio = Number(values.ratio ?? 0.05);
  const maxTokens = Number(values['max-tokens'] ?? 8);
  const log = (m: string) => { if (!values.json || values['disk-child']) console.error(m); };
  const preprocess = values['disk-child'] ? [] : await benchPreprocess(runs);
  if (!values['disk-child'] && !values.json) console.log(`Image preprocessing, Qwen2-VL defaults, medians of ${runs}:\n${preprocessTable(preprocess)}\n`);
  if (values.preprocess) {
    if (values.json) console.log(JSON.stringify({ preprocess }, null, 1));
    return 0;
  }

  const t0 = performance.now();
  const ckpt = loadCheckpoint(modelDir);
  const model = await VlModel.load(ckpt, {
    device: (values.device ?? 'auto') as DeviceRequest,
    precision: (values.precision ?? 'auto') as 'auto' | 'fp32' | 'fp16',
    attention: values.attention as AttentionKind | undefined,
  });
  const loadMs = performance.now() - t0;
  const image: ImageInput = { name: imagePath, bytes: readImage(imagePath) };
  const warmup: ImageInput = { name: 'warmup.png', bytes: readImage(demoImage()) };
  // On a GPU the device tier holds reused image KV (one DeviceKv per process; entries per engine).
  const deviceKv = model.device === 'cpu' ? null : new DeviceKv(model.device, modelShape(model));
  const engine = (store: EntryStore) => new Generator(model, undefined, reuseFor(model, store, { deviceKv }));
  const W = (gen: Generator) => gen.ask({ images: [image], question: 'Describe the image.', maxTokens: 1, mode: 'full' });
  const T = (gen: Generator, mode: Mode, extra: Partial<AskRequest> = {}) =>
    gen.ask({ images: [image], system: SYSTEM_T, question: QUESTION_T, maxTokens, ignoreEos: true, mode, ratio, ...extra });

  try {
    if (values['disk-child']) {
      // A fresh process: warm the provider on another image (shaders, arenas), then T from the disk cache.
      const store = openStore(values['disk-child'], ckpt.fingerprint, { ramBytes: 0 });
      const gen = engine(store.store);
      await gen.ask({ images: [warmup], question: 'Warm up.', maxTokens: 2, mode: 'full' });
      const r = await T(gen, 'vlcache');
      process.stdout.write(JSON.stringify(toRun(r)) + '\n');
      return 0;
    }
    log(`bench: ${modelDir} on ${model.device} (${model.kvDtype}), loaded in ${loadMs.toFixed(0)} ms; image ${imagePath}`);
    // Warm-up: the first request after load compiles shaders and grows arenas.
    await engine(new MapStore()).ask({ images: [warmup], question: 'Warm up.', maxTokens: 2, mode: 'full' });

    let fullFirst = new Float32Array();
    const full = await median(runs, async () => T(engine(new MapStore()), 'full', { onLogits: (s, l) => { if (s === 0) fullFirst = l.slice(); } }));
    const prefix = await median(runs, async () => { const g = engine(new MapStore()); await W(g); return T(g, 'prefix'); });
    const repeat = await median(runs, async () => { const g = engine(new MapStore()); await T(g, 'prefix'); return T(g, 'prefix'); });
    let vlFirst = new Float32Array();
    const vlcache = await median(runs, async () => {
      const g = engine(new MapStore());
      await W(g);
      return T(g, 'vlcache', { onLogits: (s, l) => { if (s === 0) vlFirst = l.slice(); } });
    });
    vlcache.first_token_kl = klDivergence(fullFirst, vlFirst);
    // On a GPU: the same kind of request once the image's KV already sits in the device tier
    // (a daemon's steady state): after T, ask again behind yet another system prompt.
    const vlcacheDevice = deviceKv ? await median(runs, async () => {
      const g = engine(new MapStore());
      await W(g);
      await T(g, 'vlcache');
      return T(g, 'vlcache', { system: 'You review UI and architecture images for a design meeting.' });
    }) : undefined;

    // Disk: W writes the entries to a cache directory; a new process serves T from it.
    const dir = mkdtempSync(join(tmpdir(), 'vlcache-bench-'));
    let disk: Run | undefined;
    try {
      const s = openStore(dir, ckpt.fingerprint, {});
      await W(engine(s.store));
      await s.close();
      const args = [process.argv[1], 'bench', '--model', modelDir, '--image', imagePath, '--device', model.device,
        '--precision', model.kvDtype === 'float16' ? 'fp16' : 'fp32', '--ratio', String(ratio), '--max-tokens', String(maxTokens),
        '--disk-child', dir, ...(values.attention ? ['--attention', values.attention] : [])];
      const child = spawnSync(process.execPath, args, { encoding: 'utf8', env: process.env, maxBuffer: 1 << 26 });
      if (child.status === 0) disk = JSON.parse(child.stdout.trim().split('\n').pop()!);
      else log(`bench: the disk run failed: ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    const decode = await benchDecode(model, runs, () => T(engine(new MapStore()), 'full', { maxTokens: DECODE_TOKENS }));
    const hf = readCompare(values.compare, log);
    // GPU memory in use on the device after every run above (CUDA; the whole device, ours is the only process).
    const gpuMemory = cudaMemoryInUse();
    const report = {
      ...(gpuMemory ? { gpu_memory_used_mib: Math.round(gpuMemory.used / 2 ** 20) } : {}),
      preprocess, model: modelDir, image: imagePath, device: model.device, kv_dtype: model.kvDtype, ratio, load_ms: loadMs, runs_per_figure: runs,
      decode, runs: { full, prefix, repeat, vlcache, ...(vlcacheDevice ? { vlcache_device: vlcacheDevice } : {}), ...(disk ? { disk } : {}) },
      speedup: { prefix: full.ttft_ms / prefix.ttft_ms, repeat: full.ttft_ms / repeat.ttft_ms, vlcache: full.ttft_ms / vlcache.ttft_ms,
        ...(vlcacheDevice ? { vlcache_device: full.ttft_ms / vlcacheDevice.ttft_ms } : {}), ...(disk ? { disk: full.ttft_ms / disk.ttft_ms } : {}) },
      ...(hf ? { transformers: hf, vs_transformers: { full: full.ttft_ms / hf.ttft_ms, vlcache: vlcache.ttft_ms / hf.ttft_ms, repeat: repeat.ttft_ms / hf.ttft_ms, ...(disk ? { disk: disk.ttft_ms / hf.ttft_ms } : {}) } } : {}),
    };
    if (values.json) {
      console.log(JSON.stringify(report, null, 1));
    } else {
      const f = (x: number | undefined, d = 1) => (x === undefined ? '-' : x.toFixed(d));
      console.log(`\n${full.tokens_total} prompt tokens; medians of ${runs}; r = ${ratio}`);
      console.log('| run | TTFT ms | rows computed | vision ms | prefill ms | speedup vs full |');
      console.log('|---|---|---|---|---|---|');
      for (const [name, r] of Object.entries(report.runs) as [string, Run][]) {
        console.log(`| ${name} | ${f(r.ttft_ms)} | ${r.tokens_computed}/${r.tokens_total} | ${f(r.vision_ms)} | ${f(r.prefill_ms)} | ${f(full.ttft_ms / r.ttft_ms, 2)} |`);
      }
      if (hf) console.log(`| transformers full | ${f(hf.ttft_ms)} | | ${f(hf.vision_ms)} | ${f(hf.prefill_ms)} | ${f(full.ttft_ms / hf.ttft_ms, 2)} |`);
      console.log(`vlcache first-token KL vs full: ${vlcache.first_token_kl?.toExponential(2)}; decode ${f(full.decode_tokens_per_s)} tokens/s`);
      console.log(`decode of ${DECODE_TOKENS} tokens, tokens/s: step graph ${f(decode.step_tokens_per_s)}, KV arena ${f(decode.arena_tokens_per_s)}` +
        ` (${decode.same_tokens ? 'same tokens' : 'TOKENS DIFFER'})`);
    }
    return 0;
  } finally {
    await model.dispose();
  }
}

const DECODE_TOKENS = 32;

/**
 * Decode speed of the two decode paths on the same request (median of `runs` each): the
 * step graph (the default) and the KV arena (LoadOptions.kvArena, engine/kv-arena.ts).
 */
async function benchDecode(model: VlModel, runs: number, ask: () => Promise<AskResult>) {
  const saved = model.kvArena;
  const medianRate = async () => {
    const rates: number[] = [];
    for (let i = 0; i < runs; i++) rates.push((await ask()).timings.decodeTokensPerS);
    return rates.sort((a, b) => a - b)[Math.floor((runs - 1) / 2)];
  };
  try {
    model.kvArena = undefined;
    const stepRes = await ask();
    const step = await medianRate();
    model.kvArena = saved ?? {};
    const arenaRes = await ask(); // warm-up: builds the arena graphs (and on CUDA captures the step)
    const arena = await medianRate();
    // CUDA: the same arena without graph capture, to show what replaying the captured step saves.
    let uncaptured: { rate: number; same: boolean } | undefined;
    if (model.device === 'cuda') {
      model.kvArena = { ...(saved ?? {}), graphCapture: false };
      const res = await ask();
      uncaptured = { rate: await medianRate(), same: res.tokenIds.join() === stepRes.tokenIds.join() };
    }
    return { tokens: DECODE_TOKENS, step_tokens_per_s: step, arena_tokens_per_s: arena,
      same_tokens: stepRes.tokenIds.join() === arenaRes.tokenIds.join(),
      ...(uncaptured ? { arena_uncaptured_tokens_per_s: uncaptured.rate, uncaptured_same_tokens: uncaptured.same } : {}) };
  } finally {
    model.kvArena = saved;
  }
}

function toRun(r: AskResult): Run {
  return {
    ttft_ms: r.timings.ttftMs, tokens_computed: r.cache.tokensComputed, tokens_total: r.cache.tokensTotal,
    vision_ms: r.timings.visionMs, prefill_ms: r.timings.prefillMs, preprocess_ms: r.timings.preprocessMs,
    decode_tokens_per_s: r.timings.decodeTokensPerS, recompute_fraction: r.cache.recomputeFraction, tiers: r.cache.tier,
    assemble_ms: r.cache.assembleMs,
  };
}

async function median(n: number, once: () => Promise<AskResult>): Promise<Run> {
  const rs: Run[] = [];
  for (let i = 0; i < n; i++) rs.push(toRun(await once()));
  rs.sort((a, b) => a.ttft_ms - b.ttft_ms);
  return rs[Math.floor((rs.length - 1) / 2)];
}

function klDivergence(pl: Float32Array, ql: Float32Array): number {
  const sm = (l: Float32Array) => { let m = -Infinity; for (const v of l) m = Math.max(m, v); const e = Array.from(l, (v) => Math.exp(v - m)); const s = e.reduce((a, b) => a + b, 0); return e.map((v) => v / s); };
  const p = sm(pl), q = sm(ql);
  let kl = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) kl += p[i] * (Math.log(p[i]) - Math.log(Math.max(q[i], 1e-30)));
  return Math.max(0, kl);
}

interface HfFigures { vision_ms: number; prefill_ms: number; ttft_ms: number; [k: string]: unknown }

function readCompare(path: string | undefined, log: (m: string) => void): HfFigures | undefined {
  if (!path) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    log(`bench: no comparison figures (${(e as Error).message}); reporting ours only`);
    return undefined;
  }
}
