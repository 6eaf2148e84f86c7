/**
 * The device tier's assembly path gives the same given rows, hence the same logits,
 * as the host path. On the CPU provider the "device" tensors live in host memory, but
 * the graphs (upload, slice and concatenate) are the ones a GPU runs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DeviceKv } from '../../../server/src/engine/kv-device';
import { VlModel } from '../../../server/src/engine/model';
import { Generator } from '../../../server/src/ask/generate';
import { MapStore } from '../../../server/src/cache/map-store';
import { ReuseEngine, modelShape } from '../../../server/src/ask/vlcache';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';
import { patternPng } from '../../support/images';


describe('device tier of image KV (CPU provider)', () => {
  let remove: () => void;
  let model: VlModel;
  const cat = { name: 'cat.png', bytes: patternPng(112, 84, 1) };
  const dog = { name: 'dog.png', bytes: patternPng(84, 84, 2) };
  before(async () => {
    const folder = randomCheckpointInTemp('vlcache-dev-', { family: 'qwen2_5_vl', seed: 9, tied: true });
    remove = folder.remove;
    model = await VlModel.load(folder.ckpt, { device: 'cpu' });
  });
  after(async () => {
    await model.dispose();
    remove();
  });

  it('gives the host path\'s logits, with the exact prefix from the host and image rows from the device', async () => {
    const shape = modelShape(model);
    const run = async (device: boolean) => {
      const reuse = new ReuseEngine(shape, new MapStore(), undefined, device ? new DeviceKv('cpu', shape) : undefined);
      const gen = new Generator(model, undefined, reuse);
      await gen.ask({ images: [cat], question: 'What is it?', maxTokens: 1, mode: 'full' });
      let first = new Float32Array();
      const res = await gen.ask({ images: [dog, cat], question: 'Compare.', maxTokens: 3, ignoreEos: true, mode: 'vlcache',
        onLogits: (s, l) => { if (s === 0) first = l.slice(); } });
      // Again, now that cat's KV already sits in the device tier.
      const again = await gen.ask({ images: [dog, cat], question: 'Compare again.', maxTokens: 1, mode: 'vlcache' });
      const tier = reuse.deviceTier?.stats();
      await reuse.release();
      return { res, first, again, tier, after: reuse.deviceTier?.stats() };
    };
    const host = await run(false);
    const dev = await run(true);
    assert.ok(dev.res.cache.kvHits >= 1 && dev.res.cache.prefixTokensReused > 0);
    // cat's KV went to the device tier when its first request was committed: no upload on first reuse.
    assert.ok(dev.res.cache.tier.includes('kv:device'), dev.res.cache.tier.join());
    assert.equal(dev.first.reduce((m, v, i) => Math.max(m, Math.abs(v - host.first[i])), 0), 0);
    assert.deepEqual(dev.res.tokenIds, host.res.tokenIds);
    assert.deepEqual(dev.again.tokenIds, host.again.tokenIds);
    // The tier holds cat (kept after its first ask) and dog (kept after the second); release empties it.
    assert.equal(host.tier, undefined);
    assert.equal(dev.tier?.nEntries, 2);
    assert.ok(dev.tier!.bytes > 0 && dev.tier!.nEvictions === 0);
    assert.deepEqual([dev.after?.nEntries, dev.after?.bytes], [0, 0]);
  });
});
