/**
 * The banded resize on several threads (resize-threads.ts, resize-bands.ts) against the one-thread
 * resizeBicubic (itself byte-identical to Pillow, resize-parity.test.ts): byte for byte on many
 * sizes and cuts — odd sizes, enlarging, shrinking, near-identity, one-axis resizes, 1-row bands,
 * RGB and RGBA sources, and the shapes of the golden suite. Real helper threads (the same worker
 * script as the daemon's), no mocks.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import sharp from 'sharp';

import type { PreprocessConfig } from '../../../server/src/engine/config';
import { decodeImage } from '../../../server/src/engine/image/decode';
import { preprocessImage, preprocessRgb } from '../../../server/src/engine/image/preprocess';
import { resizeBicubic, type ResizeSource } from '../../../server/src/engine/image/resize';
import { bicubicPasses, computeBand, layoutJob, planBands, prepareJob } from '../../../server/src/engine/image/resize-bands';
import { jobMemory, kernelOn } from '../../../server/src/engine/image/resize-kernel';
import { PARALLEL_MIN_PIXELS, resizeBicubicParallel, ResizeThreads } from '../../../server/src/engine/image/resize-threads';
import { toRgb } from '../../../server/src/engine/image/rgb';
import { firstDifference } from './fixtures';

/** Deterministic noise [height, width, channels]: every byte matters, so a wrong tap row shows. */
function noise(width: number, height: number, channels: 3 | 4, seed = 1): ResizeSource {
  const data = new Uint8Array(width * height * channels);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return channels === 3 ? { width, height, data } : { width, height, channels, data };
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** [inWidth, inHeight, outWidth, outHeight] */
const SIZES: [number, number, number, number][] = [
  [97, 61, 41, 29], // shrinking, odd sizes
  [31, 23, 88, 70], // enlarging (4 taps)
  [130, 101, 127, 97], // near-identity (5 taps)
  [300, 211, 37, 26], // strong shrinking (many taps)
  [53, 77, 53, 40], // height only: the vertical pass reads the source rows in place
  [64, 45, 19, 45], // width only
  [1, 50, 3, 9], // one pixel wide
  [40, 1, 17, 6], // one row high, enlarged vertically
  [7, 9, 7, 9], // unchanged size: a copy (RGBA: alpha dropped)
  [12, 1500, 5, 1200], // taller than 100:1 and shrinking (Pillow's vertical-first order)
];

describe('resizeBicubicParallel', () => {
  const threads = new ResizeThreads(3);
  after(() => threads.close());

  for (const [w, h, ow, oh] of SIZES) {
    for (const channels of [3, 4] as const) {
      it(`equals resizeBicubic byte for byte: ${w}x${h} -> ${ow}x${oh} from ${channels === 3 ? 'RGB' : 'RGBA'}, cut into 1, 2, 5, ${oh} bands`, async () => {
        const src = noise(w, h, channels, w * 7 + h);
        const serial = resizeBicubic(src, ow, oh);
        for (const bands of new Set([1, Math.min(2, oh), Math.min(5, oh), oh])) {
          const got = await resizeBicubicParallel(src, ow, oh, threads, { bands });
          assert.deepEqual([got.width, got.height], [ow, oh]);
          assert.ok(same(got.data, serial.data), `${bands} bands: ${firstDifference(got.data, serial.data)}`);
        }
      });
    }
  }

  it('equals resizeBicubic on the golden suite\'s shapes (RGB and RGBA), in 1-row bands and in 3', async () => {
    const meta = JSON.parse(readFileSync(join(__dirname, '..', '..', 'golden', 'fixtures', 'images', 'preprocessed.json'), 'utf8'));
    const shapes = new Set<string>();
    for (const m of Object.values<{ width: number; height: number; grid_thw: number[] }>(meta.images)) {
      shapes.add([m.width, m.height, m.grid_thw[2]! * 14, m.grid_thw[1]! * 14].join());
    }
    assert.ok(shapes.size >= 8, [...shapes].join(' '));
    for (const shape of shapes) {
      const [w, h, ow, oh] = shape.split(',').map(Number) as [number, number, number, number];
      for (const channels of [3, 4] as const) {
        const src = noise(w, h, channels, w + h);
        const serial = resizeBicubic(src, ow, oh);
        for (const bands of [3, oh]) {
          const got = await resizeBicubicParallel(src, ow, oh, threads, { bands });
          assert.ok(same(got.data, serial.data), `${shape} ch${channels} ${bands} bands: ${firstDifference(got.data, serial.data)}`);
        }
      }
    }
  });

  it('cuts a large image on its own (above PARALLEL_MIN_PIXELS) and equals resizeBicubic: 1500x1000 RGBA -> 1316x868', async () => {
    assert.ok(1500 * 1000 >= PARALLEL_MIN_PIXELS);
    const src = noise(1500, 1000, 4, 5);
    const got = await resizeBicubicParallel(src, 1316, 868, threads);
    assert.equal(threads.helperCount, 2, 'both helpers took part');
    assert.ok(same(got.data, resizeBicubic(src, 1316, 868).data));
    assert.ok(!(got.data.buffer instanceof SharedArrayBuffer), 'a plain buffer, as ONNX Runtime needs');
  });

  it('runs jobs handed over at once one after another, each right', async () => {
    const a = noise(90, 70, 3, 1), b = noise(70, 90, 4, 2);
    const [ra, rb] = await Promise.all([
      resizeBicubicParallel(a, 45, 33, threads, { bands: 4 }), resizeBicubicParallel(b, 101, 120, threads, { bands: 7 }),
    ]);
    assert.ok(same(ra.data, resizeBicubic(a, 45, 33).data));
    assert.ok(same(rb.data, resizeBicubic(b, 101, 120).data));
  });
});

describe('resize helpers when idle', () => {
  it('end after the idle time and start again, right, with the next image', async () => {
    const threads = new ResizeThreads(3, 200);
    try {
      const src = noise(300, 200, 3, 9);
      const want = resizeBicubic(src, 277, 181).data;
      assert.ok(same((await resizeBicubicParallel(src, 277, 181, threads, { bands: 6 })).data, want));
      assert.equal(threads.helperCount, 2);
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(threads.helperCount, 0, 'the idle helpers ended');
      // The next job starts them again, and no ended helper's exit fails it.
      assert.ok(same((await resizeBicubicParallel(src, 277, 181, threads, { bands: 6 })).data, want));
      assert.equal(threads.helperCount, 2);
    } finally {
      await threads.close();
    }
  });
});

describe('bands', () => {
  it('cover every output row once, in order, with sizes differing by at most one', () => {
    for (const [rows, n] of [[10, 1], [10, 3], [10, 10], [2156, 32]] as const) {
      const bands = planBands(rows, n);
      let y = 0;
      for (let b = 0; b < n; b++) {
        assert.equal(bands[b * 2], y);
        y = bands[b * 2 + 1]!;
        assert.ok(y - bands[b * 2]! >= Math.floor(rows / n) && y - bands[b * 2]! <= Math.ceil(rows / n));
      }
      assert.equal(y, rows);
    }
    assert.throws(() => planBands(5, 6), RangeError);
  });

  // Shrinking on both axes (ring), width only (the horizontal kernel writes output rows), height only from RGB (the
  // vertical kernel reads source rows), height only from RGBA (alpha dropped by one-tap rows), and rows of 5 and 6
  // pixels (15 bytes: the vertical kernel's byte loop; 18: a 16-byte block, then one overlapping it to the end).
  for (const [w, h, ow, oh, channels] of [[40, 30, 23, 17, 3], [40, 30, 23, 30, 4], [23, 30, 23, 17, 3], [23, 30, 23, 17, 4],
    [9, 30, 5, 17, 3], [9, 30, 6, 17, 4]] as const) {
    it(`computeBand writes exactly its own rows of the shared output: ${w}x${h} -> ${ow}x${oh}, ${channels} channels`, () => {
      const src = noise(w, h, channels, 9);
      const passes = bicubicPasses(w, h, ow, oh);
      const bands = planBands(oh, 3);
      const layout = layoutJob(passes, channels, 3);
      const memory = jobMemory(layout.bytes);
      new Uint8Array(memory.buffer).fill(7);
      const job = prepareJob(memory, layout, passes, channels, bands, src.data);
      computeBand(job, 1, kernelOn(memory));
      const stride = ow * 3;
      const o = new Uint8Array(memory.buffer, layout.out, oh * stride);
      const [y0, y1] = [bands[2]!, bands[3]!];
      assert.ok(o.subarray(0, y0 * stride).every((v) => v === 7), 'rows above the band untouched');
      assert.ok(o.subarray(y1 * stride).every((v) => v === 7), 'rows below the band untouched');
      assert.ok(same(o.subarray(y0 * stride, y1 * stride), resizeBicubic(src, ow, oh).data.subarray(y0 * stride, y1 * stride)));
    });
  }
});

describe('preprocessImage on a large RGBA screenshot (alpha dropped inside the parallel resize)', () => {
  const CFG: PreprocessConfig = {
    minPixels: 3136, maxPixels: 28 * 28 * 1600, patchSize: 14, temporalPatchSize: 2, mergeSize: 2,
    imageMean: [0.5, 0.5, 0.5], imageStd: [0.5, 0.5, 0.5], rescaleFactor: 1 / 255,
  };
  for (const [what, alphaAt] of [['opaque', 255], ['half transparent', 128]] as const) {
    it(`equals decode -> RGB -> one-thread resize for a ${what} 1600x1000 PNG, 'drop' and 'white'`, async () => {
      const src = noise(1600, 1000, 4, 11);
      for (let i = 3; i < src.data.length; i += 8) src.data[i] = alphaAt;
      for (let i = 7; i < src.data.length; i += 8) src.data[i] = 255;
      const png = new Uint8Array(await sharp(src.data, { raw: { width: 1600, height: 1000, channels: 4 } }).png().toBuffer());
      const decoded = await decodeImage(png, { keepOpaqueAlpha: true });
      assert.equal(decoded.channels, 4);
      for (const alpha of ['drop', 'white'] as const) {
        const got = await preprocessImage(png, CFG, { alpha });
        const want = preprocessRgb(toRgb(decoded, alpha), CFG);
        assert.ok(got.resizedWidth * got.resizedHeight < 1600 * 1000, 'shrunk to the pixel budget');
        assert.deepEqual(got.gridThw, want.gridThw);
        assert.ok(same(got.resized.data, want.resized.data), `${alpha}: ${firstDifference(got.resized.data, want.resized.data)}`);
      }
    });
  }
});
