/**
 * The image worker pool can be started ahead of the first image (the model loader does, so that the worker's
 * start overlaps building the graphs): warm() starts exactly one worker, which then serves the first request.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ImageWorkerPool } from '../../../server/src/engine/image/isolate';
import { patternPng } from '../../support/images';

describe('image worker pool warm-up', () => {
  it('starts one worker ahead of the first request, which that worker serves; never after close', async () => {
    const pool = new ImageWorkerPool({ timeoutMs: 20_000, maxHeapMb: 256, workers: 2 });
    try {
      assert.equal(pool.workerCount, 0, 'workers start lazily');
      pool.warm();
      pool.warm();
      assert.equal(pool.workerCount, 1);
      const img = await pool.decode(patternPng(20, 10, 3), { name: 'p.png' });
      assert.deepEqual([img.width, img.height], [20, 10]);
      assert.equal(pool.workerCount, 1, 'the warm worker served the request');
    } finally {
      await pool.close();
    }
    assert.equal(pool.workerCount, 0);
    pool.warm();
    assert.equal(pool.workerCount, 0, 'a closed pool starts nothing');
  });
});
