/**
 * `vlcache bench`: cold-request figures for one image question. Prints a table
 * (or `--json`); never fails on speed. With `--compare FILE`, adds Hugging Face
 * transformers' figures measured in the same run (test/bench/hf_ttft.py) and the
 * ratios.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { loadCheckpoint } from '../engine/checkpoint';
import { AskResult, Generator } from '../planner/generate';
import { VlModel } from '../engine/model';
import type { DeviceRequest } from '../engine/ort';
import { readImage } from './ask';
import { builtinModelDir, demoImage } from './paths';

interface HfFigures {
  vision_ms: number;
  prefill_ms: number;
  ttft_ms: number;
  [k: string]: unknown;
}

export async function runBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      image: { type: 'string' },
      device: { type: 'string' },
      precision: { type: 'string' },
      attention: { type: 'string' },
      runs: { type: 'string' },
      'max-tokens': { type: 'string' },
      compare: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const modelDir = values.model ?? builtinModelDir();
  const image = values.image ?? demoImage();
  const runs = Number(values.runs ?? 3);
  const maxTokens = Number(values['max-tokens'] ?? 16);
  const log = (m: string) => { if (!values.json) console.error(m); };

  const t0 = performance.now();
  const ckpt = loadCheckpoint(modelDir);
  const model = await VlModel.load(ckpt, {
    device: (values.device ?? 'auto') as DeviceRequest,
    precision: (values.precision ?? 'auto') as 'auto' | 'fp32' | 'fp16',
    attention: values.attention as 'manual' | 'mha' | undefined,
  });
  const loadMs = performance.now() - t0;
  log(`model ${modelDir} on ${model.device} (${model.kvDtype}), loaded in ${loadMs.toFixed(0)} ms`);
  const gen = new Generator(model);
  const bytes = readImage(image);
  const results: AskResult[] = [];
  // Run 0 is the first request after load (shaders compile, arenas grow); runs 1.. are steady state.
  for (let i = 0; i <= runs; i++) {
    results.push(await gen.ask({ images: [{ name: image, bytes }], question: 'What is in this image?', maxTokens, ignoreEos: true }));
  }
  await model.dispose();

  const steady = results.slice(1);
  const med = (f: (r: AskResult) => number) => median(steady.map(f));
  const ours = {
    vision_ms: med((r) => r.timings.vision_ms),
    prefill_ms: med((r) => r.timings.prefill_ms),
    ttft_ms: med((r) => r.timings.ttft_ms),
    preprocess_ms: med((r) => r.timings.preprocess_ms),
    decode_tokens_per_s: med((r) => r.timings.decode_tokens_per_s),
    first_request_ttft_ms: results[0].timings.ttft_ms,
  };
  let hf: HfFigures | undefined;
  if (values.compare) {
    try {
      hf = JSON.parse(readFileSync(values.compare, 'utf8'));
    } catch (e) {
      console.error(`bench: no comparison figures (${(e as Error).message}); reporting ours only`);
    }
  }
  const report = {
    model: modelDir,
    image,
    device: model.device,
    kv_dtype: model.kvDtype,
    attention: values.attention ?? 'default',
    image_tokens: results[0].images[0].tokens,
    prompt_tokens: results[0].prompt_token_ids.length,
    load_ms: loadMs,
    runs,
    ours,
    hf,
    ratio: hf ? {
      vision: ours.vision_ms / hf.vision_ms,
      prefill: ours.prefill_ms / hf.prefill_ms,
      ttft: ours.ttft_ms / hf.ttft_ms,
    } : undefined,
  };
  if (values.json) {
    console.log(JSON.stringify(report, null, 1));
    return 0;
  }
  const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(1));
  console.log(`\n${report.prompt_tokens} prompt tokens (${report.image_tokens} image tokens), median of ${runs} runs after one first request`);
  console.log('| figure | ours | transformers | ours / transformers |');
  console.log('|---|---|---|---|');
  for (const k of ['vision_ms', 'prefill_ms', 'ttft_ms'] as const) {
    const r = hf ? ours[k] / hf[k] : undefined;
    console.log(`| ${k} | ${f(ours[k])} | ${f(hf?.[k])} | ${r === undefined ? '-' : r.toFixed(2)} |`);
  }
  console.log(`| decode tokens/s | ${f(ours.decode_tokens_per_s)} | ${f(hf?.decode_tokens_per_s as number | undefined)} | |`);
  console.log(`| first request TTFT ms | ${f(ours.first_request_ttft_ms)} | | |`);
  return 0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
