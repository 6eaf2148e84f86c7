/**
 * Resized pixels come back in a kept buffer (pixel-buffers.ts): after `recycle`, the next preprocess task
 * writes its pixels into the start of that buffer when they fit (no page faults for fresh memory), a
 * buffer too small comes back unused and is kept, and the pixels are always those of preprocessImage.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ImageWorkerPool } from '../../../server/src/engine/image/isolate';
import { preprocessImage } from '../../../server/src/engine/image/preprocess';
import { PixelBuffers } from '../../../server/src/engine/image/pixel-buffers';
import { QWEN2VL_PREPROCESS as cfg } from '../../../server/src/cli/bench-preprocess';
import { patternPng } from '../../support/images';

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

describe('kept pixel buffers', () => {
  it('the next image after recycle is written into the kept buffer, with the same pixels', async () => {
    const pool = new ImageWorkerPool({ timeoutMs: 20_000, maxHeapMb: 256, workers: 1 });
    const big = patternPng(300, 200, 3), small = patternPng(90, 60, 4);
    try {
      const first = await pool.preprocess(big, cfg, { name: 'big.png' });
      const keptBytes = first.resized.data.buffer.byteLength;
      assert.equal(keptBytes, first.resized.data.length, 'a first image gets a buffer of its own size');
      pool.recycle(first.resized);

      const second = await pool.preprocess(small, cfg, { name: 'small.png' });
      assert.equal(second.resized.data.buffer.byteLength, keptBytes, 'written into the kept buffer');
      assert.equal(second.resized.data.byteOffset, 0);
      assert.ok(same(second.resized.data, (await preprocessImage(small, cfg)).resized.data), 'the pixels of preprocessImage');

      // Not recycled: the next image gets a buffer of its own again.
      const third = await pool.preprocess(small, cfg, { name: 'small.png' });
      assert.equal(third.resized.data.buffer.byteLength, third.resized.data.length);

      // A kept buffer too small for the image comes back unused and stays kept.
      const smallBytes = third.resized.data.length;
      pool.recycle(third.resized);
      const fourth = await pool.preprocess(big, cfg, { name: 'big.png' });
      assert.equal(fourth.resized.data.buffer.byteLength, fourth.resized.data.length);
      assert.ok(same(fourth.resized.data, (await preprocessImage(big, cfg)).resized.data));
      // The recycled first image's buffer went to the worker with the second task: detached here.
      assert.equal(first.resized.data.length, 0);
      const fifth = await pool.preprocess(patternPng(56, 56, 5), cfg, { name: 'tiny.png' });
      assert.ok(fifth.resized.data.length < smallBytes);
      assert.equal(fifth.resized.data.buffer.byteLength, smallBytes, 'the small buffer came back and was used');
    } finally {
      await pool.close();
    }
  });

  it('keeps at most two buffers, the largest first, and none that are shared, empty or oversized', () => {
    const kept = new PixelBuffers();
    kept.give(new ArrayBuffer(10));
    kept.give(new ArrayBuffer(30));
    kept.give(new ArrayBuffer(20));
    kept.give(new SharedArrayBuffer(40));
    kept.give(new ArrayBuffer(0));
    assert.equal(kept.size, 2);
    assert.equal(kept.take()!.byteLength, 30);
    assert.equal(kept.take()!.byteLength, 20);
    assert.equal(kept.take(), undefined);
    kept.clear();
  });
});
