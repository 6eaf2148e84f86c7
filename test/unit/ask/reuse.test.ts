/**
 * VLCache invariants on a random Qwen2.5-VL checkpoint, end to end through the
 * generator, the planner and the real ONNX Runtime CPU provider (DESIGN.md 4):
 * r = 1 equals full; a repeated identical prompt equals full (exact prefix);
 * r = 0 equals naive; an encoder hit skips the vision encoder; an image that
 * differs by one pixel is never a hit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { VlModel } from '../../../server/src/engine/model';
import { AskRequest, AskResult, Generator } from '../../../server/src/ask/generate';
import { ReuseEngine, modelShape } from '../../../server/src/ask/vlcache';
import { MapStore } from '../../../server/src/cache/map-store';
import { TieredStore } from '../../../server/src/cache/store';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';
import { patternPng, maxAbsDiff } from '../../support/images';




describe('VLCache reuse (random weights, CPU)', () => {
  let tmp: string;
  let remove: () => void;
  let model: VlModel;
  const cat = { name: 'cat.png', bytes: patternPng(112, 84, 1) }; // 112x84 -> 8x6 patches -> 12 image tokens
  const dog = { name: 'dog.png', bytes: patternPng(84, 84, 2) };

  const fresh = () => {
    const store = new MapStore();
    const reuse = new ReuseEngine(modelShape(model), store);
    return { store, gen: new Generator(model, undefined, reuse) };
  };
  const ask = async (gen: Generator, req: Partial<AskRequest>): Promise<{ res: AskResult; logits: Float32Array }> => {
    let logits = new Float32Array();
    const res = await gen.ask({ images: [cat], question: 'What is it?', maxTokens: 4, ignoreEos: true,
      onLogits: (s, l) => { if (s === 0) logits = l.slice(); }, ...req });
    return { res, logits };
  };

  before(async () => {
    const folder = randomCheckpointInTemp('vlcache-reuse-', { family: 'qwen2_5_vl', seed: 9, tied: true });
    ({ tmp, remove } = folder);
    model = await VlModel.load(folder.ckpt, { device: 'cpu' });
  });
  after(async () => {
    await model.dispose();
    remove();
  });

  it('serves a repeated image from the encoder cache without running the vision encoder', async () => {
    const { gen } = fresh();
    const a = await ask(gen, { mode: 'full' });
    const b = await ask(gen, { mode: 'full' });
    assert.deepEqual([a.res.cache.encoderMisses, b.res.cache.encoderHits], [1, 1]);
    assert.equal(b.res.timings.visionMs, 0);
    assert.ok(maxAbsDiff(a.logits, b.logits) < 1e-6);
  });

  it('gives the full logits for a repeated identical prompt (exact prefix), computing only the last row', async () => {
    const { gen } = fresh();
    const full = await ask(gen, { mode: 'full' });
    const again = await ask(gen, { mode: 'vlcache' });
    assert.equal(again.res.cache.tokensComputed, 1);
    assert.equal(again.res.cache.prefixTokensReused, again.res.promptTokenIds.length - 1);
    assert.ok(maxAbsDiff(full.logits, again.logits) < 1e-5);
    assert.deepEqual(again.res.tokenIds, full.res.tokenIds);
  });

  it('reuses the image after a different prefix, recomputing its leading rows, and equals full at r = 1', async () => {
    const { gen } = fresh();
    await ask(gen, { mode: 'full', images: [cat] }); // caches cat's KV with cat first
    await ask(gen, { mode: 'full', images: [dog], question: 'And this one?' }); // caches dog first
    // [dog, cat]: the exact prefix runs through dog; cat now sits after dog, so VLCache reuses its KV.
    const vl = await ask(gen, { mode: 'vlcache', ratio: 0.05, images: [dog, cat] });
    const full = await ask(gen, { mode: 'full', images: [dog, cat] });
    assert.equal(vl.res.cache.kvHits, 1);
    assert.equal(vl.res.cache.imageTokensReused, 11); // 12 tokens, max(1, floor(0.6)) = 1 recomputed
    assert.ok(vl.res.cache.prefixTokensReused > 9, 'dog is inside the exact prefix');
    assert.ok(vl.res.cache.tokensComputed < full.res.cache.tokensComputed);
    const { gen: gen2 } = fresh();
    await ask(gen2, { mode: 'full', images: [cat] });
    const r1 = await ask(gen2, { mode: 'vlcache', ratio: 1, images: [dog, cat] });
    assert.equal(r1.res.cache.imageTokensReused, 0);
    assert.ok(maxAbsDiff(full.logits, r1.logits) < 1e-5);
  });

  it('equals naive at r = 0 (every image row reused)', async () => {
    const q = 'Different question, so only the system prefix matches.';
    const run = async (mode: 'naive' | 'vlcache') => {
      const { gen } = fresh();
      await ask(gen, { mode: 'full', images: [cat] });
      return ask(gen, { mode, ratio: 0, images: [dog, cat], question: q });
    };
    const naive = await run('naive');
    const r0 = await run('vlcache');
    assert.equal(naive.res.cache.imageTokensReused, 12);
    assert.equal(r0.res.cache.imageTokensReused, 12);
    assert.equal(maxAbsDiff(naive.logits, r0.logits), 0);
  });

  it('gives identical logits whether the image KV comes from disk after a restart or from RAM', async () => {
    const dir = join(tmp, 'workspace-cache');
    const shape = modelShape(model);
    const open = () => new TieredStore({ dir, ramBytes: 1 << 30, diskBytes: 1 << 30, modelFingerprint: shape.fingerprint });
    const first = open();
    const warm = new Generator(model, undefined, new ReuseEngine(shape, first));
    await ask(warm, { mode: 'full', images: [cat] });
    await ask(warm, { mode: 'full', images: [dog], question: 'And this?' });
    await first.close();
    // A restarted store: the first request reads the entries from disk (and promotes them to RAM);
    // a second engine over the same store, with the same empty prefix index, gets them from RAM.
    const store = open();
    const req = { mode: 'vlcache' as const, images: [dog, cat], question: 'Compare them.' };
    const fromDisk = await ask(new Generator(model, undefined, new ReuseEngine(shape, store)), req);
    const fromRam = await ask(new Generator(model, undefined, new ReuseEngine(shape, store)), req);
    assert.deepEqual(fromDisk.res.cache.tier.filter((t) => t.startsWith('kv')), ['kv:disk', 'kv:disk']);
    assert.deepEqual(fromRam.res.cache.tier.filter((t) => t.startsWith('kv')), ['kv:ram', 'kv:ram']);
    assert.equal(maxAbsDiff(fromRam.logits, fromDisk.logits), 0);
    assert.deepEqual(fromRam.res.tokenIds, fromDisk.res.tokenIds);
    await store.close();
  });

  it('computes an image once when two requests for it run at the same time', async () => {
    const { gen, store } = fresh();
    const [a, b] = await Promise.all([ask(gen, { mode: 'full' }), ask(gen, { mode: 'full' })]);
    assert.equal(a.res.cache.encoderMisses + b.res.cache.encoderMisses, 2);
    assert.equal([a, b].filter((x) => x.res.timings.visionMs > 0).length, 1, 'the vision encoder ran once');
    assert.equal(store.size, 2); // one encoder entry, one KV entry
  });

  it('reuses every row losslessly when the image comes back after the same prefix in a new process', async () => {
    const { gen, store } = fresh();
    const full = await ask(gen, { mode: 'full' });
    // A restarted daemon: the same store, an empty exact-prefix index.
    const shape = modelShape(model);
    const again = await ask(new Generator(model, undefined, new ReuseEngine(shape, store)), { mode: 'vlcache' });
    assert.equal(again.res.cache.prefixTokensReused, 0);
    assert.equal(again.res.cache.imageTokensReused, 12); // all 12 image rows: the cached context matches
    assert.ok(maxAbsDiff(full.logits, again.logits) < 1e-5);
    assert.deepEqual(again.res.tokenIds, full.res.tokenIds);
  });

  it('never serves an image that differs by one pixel from the cache', async () => {
    const { gen } = fresh();
    await ask(gen, { mode: 'full', images: [cat] });
    const other = { name: 'cat2.png', bytes: patternPng(112, 84, 1, [5, 7]) };
    const b = await ask(gen, { mode: 'vlcache', images: [other] });
    assert.deepEqual([b.res.cache.encoderHits, b.res.cache.kvHits], [0, 0]);
  });
});
