import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';

import { PNG } from 'pngjs';

import type { PreprocessConfig } from '../../../server/src/engine/config';
import { ImageError } from '../../../server/src/engine/image/errors';
import { toPixelValues } from '../../../server/src/engine/image/patches';
import { type PreprocessedImage, preprocessImage, preprocessRgb } from '../../../server/src/engine/image/preprocess';
import { fixtureBytes, manifest } from './fixtures';

/** preprocessor_config.json of Qwen2-VL / Qwen2.5-VL. */
const QWEN: PreprocessConfig = {
  minPixels: 3136,
  maxPixels: 12_845_056,
  patchSize: 14,
  temporalPatchSize: 2,
  mergeSize: 2,
  imageMean: [0.48145466, 0.4578275, 0.40821073],
  imageStd: [0.26862954, 0.26130258, 0.27577711],
  rescaleFactor: 1 / 255,
};

/** Identity normalisation, so pixel_values hold the raw bytes and positions can be read back. */
const RAW: PreprocessConfig = { ...QWEN, imageMean: [0, 0, 0], imageStd: [1, 1, 1], rescaleFactor: 1 };

/** The host `pixel_values` of a preprocessed image (the vision graph makes the same in-graph, patchify.test.ts). */
const pixelValues = (r: PreprocessedImage, cfg: PreprocessConfig) => toPixelValues(r.resized, cfg, cfg);

/** An image whose byte at (x, y, c) is (x + 3y + 70c) mod 256, [h, w, 3]. */
function synthetic(width: number, height: number) {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = (x + 3 * y + 70 * c) % 256;
    }
  }
  return { width, height, data };
}

function pngBytes(width: number, height: number): Uint8Array {
  const png = new PNG({ width, height });
  png.data.fill(200);
  return new Uint8Array(PNG.sync.write(png));
}

describe('preprocessImage', () => {
  it('has pipeline references made with Pillow and numpy', () => {
    assert.ok(manifest.pipeline.length >= 4);
  });

  for (const c of manifest.pipeline) {
    const what = `${c.file}${c.maxPixelsOverride ? ` with maxPixelsOverride ${c.maxPixelsOverride}` : ''}`;
    it(`is bit-identical to Qwen2VLImageProcessorPil for ${what}`, async () => {
      const r = await preprocessImage(fixtureBytes(c.file), QWEN, { maxPixelsOverride: c.maxPixelsOverride ?? undefined });
      assert.deepEqual(r.gridThw, c.gridThw);
      assert.deepEqual([r.resizedWidth, r.resizedHeight], [c.resizedWidth, c.resizedHeight]);
      const pv = pixelValues(r, QWEN);
      assert.equal(pv.length, c.gridThw[1] * c.gridThw[2] * 1176);
      for (const [row, col, value] of c.samples) assert.equal(pv[row * 1176 + col], value, `[${row}, ${col}]`);
      const digest = createHash('sha256').update(new Uint8Array(pv.buffer)).digest('hex');
      assert.equal(digest, c.sha256);
    });
  }

  it('lays patches out in 2x2 merge blocks, channels then frames then rows then columns', () => {
    // 84 x 56 stays 84 x 56 (multiples of 28, within the budget): gridH = 4, gridW = 6, 24 patches.
    const r = preprocessRgb(synthetic(84, 56), RAW);
    const pv = pixelValues(r, RAW);
    assert.deepEqual(r.gridThw, [1, 4, 6]);
    const [P, T, M, gw] = [14, 2, 2, 6];
    for (let row = 0; row < 24; row++) {
      // row = ((bh * gw / M + bw) * M + ih) * M + iw  (qwen2vl.md section 2, step 5).
      const iw = row % M;
      const ih = Math.floor(row / M) % M;
      const bw = Math.floor(row / (M * M)) % (gw / M);
      const bh = Math.floor(row / (M * M * (gw / M)));
      const [ph, pw] = [bh * M + ih, bw * M + iw];
      for (let c = 0; c < 3; c++) {
        for (let t = 0; t < T; t++) {
          for (const [y, x] of [[0, 0], [5, 9], [13, 13]] as const) {
            const col = ((c * T + t) * P + y) * P + x;
            const expected = (pw * P + x + 3 * (ph * P + y) + 70 * c) % 256;
            assert.equal(pv[row * 1176 + col], expected, `row ${row} c ${c} t ${t} y ${y} x ${x}`);
          }
        }
      }
    }
  });

  it('repeats the image in both temporal slots', () => {
    const r = preprocessRgb(synthetic(56, 56), QWEN);
    const pv = pixelValues(r, QWEN);
    for (let row = 0; row < 16; row++) {
      for (let c = 0; c < 3; c++) {
        const t0 = pv.subarray(row * 1176 + c * 392, row * 1176 + c * 392 + 196);
        const t1 = pv.subarray(row * 1176 + c * 392 + 196, row * 1176 + c * 392 + 392);
        assert.deepEqual(t1, t0);
      }
    }
  });

  it('lowers the pixel budget with maxPixelsOverride and reports the downscale', () => {
    // 300 x 200 -> 308 x 196 normally; a 10000-pixel budget gives beta = sqrt(60000 / 10000) = 2.449,
    // floor(300 / 2.449 / 28) = 4 and floor(200 / 2.449 / 28) = 2 merge units: 112 x 56.
    const image = synthetic(300, 200);
    const normal = preprocessRgb(image, QWEN);
    assert.deepEqual([normal.resizedWidth, normal.resizedHeight, normal.downscaled], [308, 196, false]);
    const small = preprocessRgb(image, QWEN, { maxPixelsOverride: 10_000 });
    assert.deepEqual([small.resizedWidth, small.resizedHeight, small.downscaled], [112, 56, true]);
    assert.deepEqual([small.originalWidth, small.originalHeight], [300, 200]);
    assert.deepEqual(small.gridThw, [1, 4, 8]);
  });

  it('ignores an override above the model limit', () => {
    const r = preprocessRgb(synthetic(300, 200), { ...QWEN, maxPixels: 10_000 }, { maxPixelsOverride: 1e9 });
    assert.deepEqual([r.resizedWidth, r.resizedHeight, r.downscaled], [112, 56, true]);
  });

  it('rejects a 1 x 300 image for its aspect ratio, naming the file', async () => {
    await assert.rejects(
      () => preprocessImage(pngBytes(1, 300), QWEN, { name: 'docs/strip.png' }),
      (e: unknown) =>
        e instanceof ImageError && e.code === 'aspect-ratio' && e.message.startsWith('docs/strip.png: The image is 1x300'),
    );
  });

  it('passes decoding errors through', async () => {
    await assert.rejects(
      () => preprocessImage(new TextEncoder().encode('<!DOCTYPE html>'), QWEN, { name: 'a.png' }),
      (e: unknown) => e instanceof ImageError && e.code === 'not-an-image',
    );
  });
});
