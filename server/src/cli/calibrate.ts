/**
 * `vlcache calibrate`: measures each decoder layer's sensitivity to reused image KV on
 * sample images (evaluation/calibrate.ts), spreads a recompute budget over the layers by it
 * (planner/schedule.ts, allocateRatios) and writes the model's layer schedule file, which
 * `ask`-time VLCache and `vlcache eval` then use instead of the uniform ratio.
 */
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '../engine/checkpoint';
import { VlModel } from '../engine/model';
import type { DeviceRequest } from '../engine/ort';
import { measureSensitivity } from '../evaluation/calibrate';
import { Generator } from '../ask/generate';
import { MapStore } from '../cache/map-store';
import { allocateRatios, saveSchedule } from '../planner/schedule';
import { reuseFor } from '../ask/vlcache';
import { readImage } from './ask';
import { syntheticImage } from './eval';
import { InputError } from './errors';
import { builtinModelDir, demoImage } from '../paths';

export async function runCalibrate(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, image: { type: 'string', multiple: true }, budget: { type: 'string' },
      device: { type: 'string' }, precision: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  const budget = Number(values.budget ?? 0.05);
  if (!Number.isFinite(budget) || budget <= 0 || budget > 1) throw new InputError(`--budget takes a ratio in (0, 1], not '${values.budget}'`);
  const ckpt = loadCheckpoint(values.model ?? builtinModelDir());
  const model = await VlModel.load(ckpt, { device: (values.device ?? 'auto') as DeviceRequest,
    precision: values.precision as 'fp32' | 'fp16' | undefined, layered: true });
  const t = ckpt.config.text;
  const L = t.numLayers;
  const images = values.image?.length
    ? values.image.map((p) => ({ name: p, bytes: readImage(p) }))
    : [{ name: demoImage(), bytes: readImage(demoImage()) }, syntheticImage()];
  let sensitivity: number[];
  try {
    if (!values.json) console.error(`calibrating ${values.model ?? 'the built-in model'} (${model.device}, ${L} layers) on ${images.map((i) => i.name).join(', ')}`);
    sensitivity = await measureSensitivity({
      images, other: syntheticImage(), numLayers: L,
      newGenerator: () => new Generator(model, undefined, reuseFor(model, new MapStore(), { deviceKv: null })),
    });
  } finally {
    await model.dispose();
  }
  const ratios = allocateRatios(sensitivity, budget);
  const schedule = {
    ratios, source: `vlcache calibrate: ${images.length} image(s) x 5 variants, first-token KL, budget ${budget}`,
    created: new Date().toISOString(), model: ckpt.fingerprint, sensitivity, budget,
  };
  const path = saveSchedule(schedule);
  if (values.json) {
    console.log(JSON.stringify({ ...schedule, path }, null, 1));
    return 0;
  }
  console.log(`| layer | s_l: KL when reuse starts at layer l | drop s_l - s_(l+1) | ratio r_l |`);
  console.log('|---|---|---|---|');
  for (let l = 0; l <= L; l++) {
    const drop = l < L ? (sensitivity[l] - sensitivity[l + 1]).toExponential(2) : '';
    console.log(`| ${l}${l === 0 ? ' (naive)' : l === L ? ' (full)' : ''} | ${sensitivity[l].toExponential(3)} | ${drop} | ${l < L ? ratios[l].toFixed(4) : ''} |`);
  }
  console.log(`mean ratio ${(ratios.reduce((a, b) => a + b, 0) / L).toFixed(4)} (budget ${budget}); schedule written to ${path}`);
  return 0;
}
