/**
 * One rule for uniform ratio vs calibrated schedule vs layered graph (planner/recompute.ts,
 * ask/load-model.ts): an explicit ratio wins; without one, vlcache mode uses the
 * model's schedule, and the model is loaded on the layered graph exactly then.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel, type LoadModelOptions } from '../../../server/src/ask/load-model';
import { recomputeFor, usesSchedule } from '../../../server/src/planner/recompute';
import { saveSchedule, type LayerSchedule } from '../../../server/src/planner/schedule';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';

const schedule = (ratios: number[]): LayerSchedule => ({ ratios, source: 'test', created: '2026-12-04T00:00:00Z', model: 'm' });

describe('recomputeFor', () => {
  const s = schedule([0.5, 0.2]);
  it('uses the schedule in vlcache mode when no ratio is given', () => {
    assert.deepEqual(recomputeFor('vlcache', undefined, s), { mode: 'vlcache', ratio: undefined, schedule: [0.5, 0.2] });
  });
  it('uses an explicit ratio at every layer, even with a schedule', () => {
    assert.deepEqual(recomputeFor('vlcache', 0.1, s), { mode: 'vlcache', ratio: 0.1, schedule: undefined });
  });
  it('uses no schedule in other modes, or when the model has none', () => {
    assert.deepEqual(recomputeFor('cacheblend', undefined, s), { mode: 'cacheblend', ratio: undefined, schedule: undefined });
    assert.deepEqual(recomputeFor('vlcache', undefined, undefined), { mode: 'vlcache', ratio: undefined, schedule: undefined });
    assert.equal(usesSchedule('full', undefined), false);
  });
  it('replaces a schedule it is spread over', () => {
    const configured: { schedule?: readonly number[] } = { schedule: [0.9, 0.9] };
    const req = { maxPixels: 100, ...configured, ...recomputeFor('vlcache', 0.3, s) };
    assert.equal(req.schedule, undefined);
    assert.equal(req.ratio, 0.3);
  });
});

describe('loadModel (random weights, CPU)', () => {
  let remove: () => void;
  let dir: string;
  before(() => {
    const t = randomCheckpointInTemp('vlcache-load-', { family: 'qwen2_vl', tied: true, layers: 2 });
    remove = t.remove;
    dir = join(t.tmp, 'model');
    saveSchedule({ ...schedule([0.4, 0.1]), model: t.ckpt.fingerprint });
  });
  after(() => remove());

  const load = async (reuse: LoadModelOptions['reuse']) => {
    const { model, schedule: s } = await loadModel(dir, { device: 'cpu', reuse });
    await model.dispose();
    return { layered: model.layered, ratios: s?.ratios };
  };

  it('loads the calibrated schedule and the layered graph in vlcache mode without a ratio', async () => {
    assert.deepEqual(await load({ mode: 'vlcache' }), { layered: true, ratios: [0.4, 0.1] });
  });
  it('loads the uniform graph with an explicit ratio, in another mode, or without reuse', async () => {
    for (const reuse of [{ mode: 'vlcache' as const, ratio: 0.05 }, { mode: 'full' as const }, undefined]) {
      assert.deepEqual(await load(reuse), { layered: false, ratios: undefined }, JSON.stringify(reuse));
    }
  });
});
