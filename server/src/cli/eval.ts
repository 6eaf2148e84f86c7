/**
 * `vlcache eval`: the fidelity table (evaluation/fidelity.ts) for one image on one
 * model: every reuse mode against full recomputation of the same prompt.
 */
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import type { DeviceRequest } from '../engine/ort';
import { DEFAULT_MODES, FidelityRow, ModeSpec, defaultVariants, runFidelity } from '../evaluation/fidelity';
import { loadModel } from '../ask/load-model';
import { Generator } from '../ask/generate';
import { reuseFor } from '../ask/vlcache';
import { MapStore } from '../cache/map-store';
import { readImage } from './ask';
import { builtinModelDir, demoImage, packageRoot } from '../paths';
import { join } from 'node:path';
import { InputError } from './errors';
import { runSyntheticEval } from './eval-synthetic';

export async function runEval(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, image: { type: 'string' }, 'other-image': { type: 'string' },
      device: { type: 'string' }, precision: { type: 'string' }, tokens: { type: 'string' }, json: { type: 'boolean' },
      'no-schedule': { type: 'boolean' }, task: { type: 'string' }, 'eval-dir': { type: 'string' },
      limit: { type: 'string' }, 'max-tokens': { type: 'string' },
    },
  });
  if (values.task !== undefined && values.task !== 'synthetic') throw new InputError(`--task takes 'synthetic', not '${values.task}'`);
  // With a calibrated layer schedule (`vlcache calibrate`), "vlcache scheduled" runs beside the
  // uniform ratios, on the layered step graph (which gives every other mode the same logits).
  const { model, schedule } = await loadModel(values.model ?? builtinModelDir(), {
    device: (values.device ?? 'auto') as DeviceRequest, precision: values.precision as 'fp32' | 'fp16' | undefined,
    log: (l) => console.error(l), reuse: values['no-schedule'] ? undefined : { mode: 'vlcache' },
  });
  const modes: ModeSpec[] = [...DEFAULT_MODES];
  if (schedule) {
    const at = modes.findIndex((m) => m.label === 'vlcache r=0.05') + 1;
    modes.splice(at, 0, { label: 'vlcache scheduled', mode: 'vlcache', schedule: schedule.ratios });
  }
  if (values.task === 'synthetic') {
    try {
      return await runSyntheticEval(model, modes, schedule?.ratios, {
        dir: values['eval-dir'] ?? join(packageRoot(), 'test', 'reference', 'eval'), json: values.json ?? false,
        limit: values.limit === undefined ? undefined : Number(values.limit), maxTokens: Number(values['max-tokens'] ?? 8),
        modelName: values.model ?? 'builtin',
      });
    } finally {
      await model.dispose();
    }
  }
  const image = values.image ?? demoImage();
  const other = values['other-image'] ? { name: values['other-image'], bytes: readImage(values['other-image']) } : syntheticImage();
  if (!values.json) {
    console.log(`fidelity on ${values.model ?? 'the built-in model'} (${model.device}), image ${image}`);
    if (schedule) console.log(`layer schedule (${schedule.source}): ${schedule.ratios.map((r) => r.toFixed(3)).join(', ')}`);
    console.log('| variant | mode | first-token KL | top-1 agrees | greedy match | rows computed | TTFT ms | TTFT speedup vs full |');
    console.log('|---|---|---|---|---|---|---|---|');
  }
  let rows: FidelityRow[];
  try {
    rows = await runFidelity({
      image: { name: image, bytes: readImage(image) }, variants: defaultVariants(other), modes,
      tokens: Number(values.tokens ?? 32),
      newGenerator: () => new Generator(model, undefined, reuseFor(model, new MapStore(), { deviceKv: null })),
      onRow: values.json ? undefined : (r) => console.log(`| ${r.variant} | ${r.mode} | ${r.first_token_kl.toExponential(2)} | ` +
        `${r.first_token_top1_agree ? 'yes' : 'no'} | ${r.greedy_match}/${r.greedy_tokens} | ${r.tokens_computed}/${r.tokens_total}` +
        `${r.layer_rows_computed ? ` (per layer ${r.layer_rows_computed.join('/')})` : ''} | ` +
        `${r.ttft_ms.toFixed(1)} | ${r.ttft_speedup.toFixed(2)} |`),
    });
  } finally {
    await model.dispose();
  }
  if (values.json) console.log(JSON.stringify({ model: values.model ?? 'builtin', device: model.device, image, schedule, rows }, null, 1));
  return 0;
}

/** A second, different image for the "another image first" variant when none is given. */
export function syntheticImage(): { name: string; bytes: Uint8Array } {
  const p = new PNG({ width: 224, height: 168 });
  for (let y = 0; y < 168; y++) for (let x = 0; x < 224; x++) {
    const i = (y * 224 + x) * 4;
    p.data[i] = (x * 255) / 224; p.data[i + 1] = (y * 255) / 168; p.data[i + 2] = ((x ^ y) & 16) ? 200 : 40; p.data[i + 3] = 255;
  }
  return { name: 'synthetic-gradient.png', bytes: PNG.sync.write(p) };
}
