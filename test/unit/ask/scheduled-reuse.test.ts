/**
 * Layer-aware VLCache end to end on a random 4-layer Qwen2.5-VL checkpoint through the
 * generator, the planner and the layered step graph on the real ONNX Runtime CPU
 * provider: a uniform schedule equal to r gives the uniform path's logits; a schedule of
 * all ones gives full's; larger early ratios compute more rows at early layers and run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VlModel } from '../../../server/src/engine/model';
import { AskRequest, AskResult, Generator } from '../../../server/src/ask/generate';
import type { LayeredPlan } from '../../../server/src/planner/plan';
import { ReuseEngine } from '../../../server/src/ask/vlcache';
import { MapStore } from '../../../server/src/cache/map-store';
import { exitSchedule, measureSensitivity } from '../../../server/src/evaluation/calibrate';
import { allocateRatios, scheduleError } from '../../../server/src/planner/schedule';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';
import { patternPng, maxAbsDiff } from '../../support/images';


const LAYERS = 4;

describe('VLCache with a layer schedule (random weights, 4 layers, CPU)', () => {
  let remove: () => void;
  let uniform: VlModel;
  let layered: VlModel;
  const cat = { name: 'cat.png', bytes: patternPng(224, 168, 1) }; // 16x12 patches -> 48 image tokens
  const dog = { name: 'dog.png', bytes: patternPng(84, 84, 2) };

  const gen = (model: VlModel) => {
    const c = model.checkpoint.config.text;
    return new Generator(model, undefined, new ReuseEngine({ fingerprint: model.checkpoint.fingerprint, hiddenSize: c.hiddenSize,
      numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, kvDtype: model.kvDtype }, new MapStore()));
  };
  /** cat cached first and alone, then asked after dog (a different prefix): its KV is reused. */
  const run = async (model: VlModel, req: Partial<AskRequest>) => {
    const g = gen(model);
    await g.ask({ images: [cat], question: 'What is it?', maxTokens: 1, mode: 'full' });
    let logits = new Float32Array();
    let layeredPlan: LayeredPlan | undefined;
    const res: AskResult = await g.ask({ images: [dog, cat], question: 'Compare them.', maxTokens: 4, ignoreEos: true,
      onLogits: (s, l) => { if (s === 0) logits = l.slice(); }, onPlan: (i) => { layeredPlan = i.layered; }, ...req });
    return { res, logits, layeredPlan };
  };

  before(async () => {
    const { ckpt, remove: removeFolder } = randomCheckpointInTemp('vlcache-scheduled-', { family: 'qwen2_5_vl', seed: 11, tied: true, layers: LAYERS });
    remove = removeFolder;
    uniform = await VlModel.load(ckpt, { device: 'cpu' });
    layered = await VlModel.load(ckpt, { device: 'cpu', layered: true });
  });
  after(async () => {
    await uniform.dispose();
    await layered.dispose();
    remove();
  });

  it('a uniform schedule equal to r gives the uniform path\'s logits and tokens', async () => {
    for (const r of [0.05, 0.25]) {
      const u = await run(uniform, { mode: 'vlcache', ratio: r });
      const s = await run(layered, { mode: 'vlcache', ratio: r, schedule: [r, r, r, r] });
      assert.ok(s.layeredPlan, 'the scheduled path ran');
      assert.equal(u.res.cache.kvHits, 1);
      assert.equal(s.res.cache.kvHits, 1);
      assert.equal(s.res.cache.imageTokensReused, u.res.cache.imageTokensReused);
      assert.equal(s.res.cache.tokensComputed, u.res.cache.tokensComputed);
      assert.deepEqual(s.res.cache.layerRowsComputed, Array(LAYERS).fill(u.res.cache.tokensComputed));
      assert.ok(maxAbsDiff(u.logits, s.logits) < 1e-5, `r = ${r}: ${maxAbsDiff(u.logits, s.logits)}`);
      assert.deepEqual(s.res.tokenIds, u.res.tokenIds);
    }
  });

  it('a schedule of all ones gives full\'s logits', async () => {
    const full = await run(uniform, { mode: 'full' });
    const ones = await run(layered, { mode: 'vlcache', schedule: [1, 1, 1, 1] });
    assert.equal(ones.res.cache.imageTokensReused, 0);
    assert.ok(maxAbsDiff(full.logits, ones.logits) < 1e-5);
    assert.deepEqual(ones.res.tokenIds, full.res.tokenIds);
  });

  it('larger early ratios compute more rows at early layers, and decode and commit run', async () => {
    const s = await run(layered, { mode: 'vlcache', schedule: [0.5, 0.25, 0.1, 0.05] });
    const u = await run(uniform, { mode: 'vlcache', ratio: 0.05 });
    const counts = s.res.cache.layerRowsComputed!;
    const text = u.res.cache.tokensComputed - 2; // uniform r = 0.05: text rows + max(1, floor(2.4)) = 2 image rows
    assert.deepEqual(counts, [text + 24, text + 12, text + 4, text + 2]);
    assert.deepEqual(s.layeredPlan!.computeRows.map((r) => r.length), counts);
    assert.equal(s.res.tokenIds.length, 4);
    assert.ok(s.logits.every(Number.isFinite));
    // The same request again: the exact prefix (committed from the layered present) now covers it.
    const g = gen(layered);
    await g.ask({ images: [cat], question: 'What is it?', maxTokens: 1, mode: 'full' });
    const req = { images: [dog, cat], question: 'Compare them.', maxTokens: 2, ignoreEos: true, mode: 'vlcache' as const,
      schedule: [0.5, 0.25, 0.1, 0.05] };
    const a = await g.ask(req);
    const b = await g.ask(req);
    assert.equal(b.cache.tokensComputed, 1);
    assert.equal(b.cache.prefixTokensReused, b.promptTokenIds.length - 1);
    assert.deepEqual(b.tokenIds, a.tokenIds);
  });

  it('calibration: s_0 is naive, s_L is full, and the allocated schedule is valid', async () => {
    assert.deepEqual(exitSchedule(0, 4), [0, 0, 0, 0]);
    assert.deepEqual(exitSchedule(3, 4), [1, 1, 1, 0]);
    const s = await measureSensitivity({ images: [cat], other: dog, numLayers: LAYERS, newGenerator: () => gen(layered) });
    assert.equal(s.length, LAYERS + 1);
    assert.ok(s[LAYERS] < 1e-9, `full: ${s[LAYERS]}`);
    assert.ok(s[0] > 0, 'naive reuse after another prefix changes the logits');
    // Layer 0's pre-RoPE K/V depend on the embedding only: recomputing it alone changes nothing.
    assert.ok(Math.abs(s[0] - s[1]) < 1e-6);
    const r = allocateRatios(s, 0.05);
    assert.equal(scheduleError(r, LAYERS), undefined);
    assert.ok(Math.abs(r.reduce((a, b) => a + b, 0) / LAYERS - 0.05) < 1e-9);
  });

  it('ignores the schedule on a model not loaded layered (uniform ratio)', async () => {
    const u = await run(uniform, { mode: 'vlcache', ratio: 0.05, schedule: [0.5, 0.25, 0.1, 0.05] });
    assert.equal(u.layeredPlan, undefined);
    assert.equal(u.res.cache.layerRowsComputed, undefined);
  });
});
