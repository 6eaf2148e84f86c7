/**
 * An encoder-cache hit skips decoding entirely: the second ask about the same image bytes never reaches the
 * image worker pool (random weights, CPU). The pool's preprocess is wrapped to count calls; it still runs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { TieredStore } from '../../../server/src/cache/store';
import { imageWorkers } from '../../../server/src/engine/image/isolate';
import { VlModel } from '../../../server/src/engine/model';
import { Generator } from '../../../server/src/ask/generate';
import { ReuseEngine, modelShape } from '../../../server/src/ask/vlcache';
import { patternPng } from '../../support/images';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';

describe('encoder-cache hits', () => {
  let remove: () => void;
  let model: VlModel;
  before(async () => {
    const folder = randomCheckpointInTemp('vlcache-encoder-hit-', { family: 'qwen2_vl', seed: 3, tied: true });
    remove = folder.remove;
    model = await VlModel.load(folder.ckpt, { device: 'cpu' });
  });
  after(async () => {
    await model.dispose();
    remove();
  });

  it('do not decode the image again', async () => {
    const pool = imageWorkers();
    const original = pool.preprocess;
    const decoded: string[] = [];
    pool.preprocess = function (this: typeof pool, bytes, cfg, options, timeoutMs) {
      decoded.push(options?.name ?? '?');
      return original.call(this, bytes, cfg, options, timeoutMs);
    };
    try {
      const store = new TieredStore({ ramBytes: 2 ** 28, diskBytes: 0, modelFingerprint: model.checkpoint.fingerprint, log: () => {} });
      const gen = new Generator(model, undefined, new ReuseEngine(modelShape(model), store, 0));
      const image = { name: 'dog.png', bytes: patternPng(84, 84, 2) };
      const first = await gen.ask({ images: [image], question: 'What is it?', maxTokens: 1, mode: 'full' });
      assert.deepEqual(decoded, ['dog.png']);
      assert.ok(first.timings.preprocessMs > 0);
      const again = await gen.ask({ images: [image], question: 'And now?', maxTokens: 1, mode: 'full' });
      assert.deepEqual(decoded, ['dog.png'], 'the second ask decoded the image again');
      assert.ok(again.cache.tier.some((t) => t.startsWith('encoder')), `tiers: ${again.cache.tier.join(', ')}`);
      assert.equal(again.timings.preprocessMs, 0);
    } finally {
      pool.preprocess = original;
    }
  });
});
