/**
 * The vision graph's in-graph patchify (kernels/graphs/vision.ts `inGraphPixelValues`: uint8 image ->
 * 2x2 merge-block order, rescale + normalise, T frames) against the host reference patches.ts
 * `toPixelValues`, which the golden suite checks bit for bit against transformers. Run alone in a
 * one-output graph on the CPU, on odd grid shapes, with Qwen2-VL's normalisation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPatchifyGraph } from '../../../kernels/graphs/vision';
import type { PreprocessConfig } from '../../../server/src/engine/config';
import { normalizationTable, toPixelValues } from '../../../server/src/engine/image/patches';
import { Session, f32, u8 } from '../../../server/src/engine/ort';
import { graphNormalization } from '../../../server/src/engine/vision-inputs';

const QWEN: PreprocessConfig = {
  minPixels: 56 * 56, maxPixels: 28 * 28 * 1280, patchSize: 14, temporalPatchSize: 2, mergeSize: 2,
  imageMean: [0.48145466, 0.4578275, 0.40821073], imageStd: [0.26862954, 0.26130258, 0.27577711], rescaleFactor: 1 / 255,
};
const VISION = { inChannels: 3, patchSize: 14, spatialMergeSize: 2, temporalPatchSize: 2 };

const patchifySession = () => Session.create(buildPatchifyGraph(VISION), 'cpu');

/** Every byte value in every channel, in a pattern that differs per position. */
function image(width: number, height: number) {
  const data = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37 + Math.floor(i / 7) * 11) % 256);
  return { width, height, data };
}

describe('in-graph patchify', () => {
  const table = normalizationTable(QWEN);
  const norm = graphNormalization(QWEN);

  it('divides by 255 because a float32 multiplication by 1/255 would differ from transformers (float64 rescale)', () => {
    assert.deepEqual([...norm.divisor], [255]);
    let differ = 0;
    for (let c = 0; c < 3; c++) {
      for (let v = 0; v < 256; v++) {
        const f = Math.fround;
        const float32Math = f(f(f(f(v) * f(QWEN.rescaleFactor)) - f(QWEN.imageMean[c])) / f(QWEN.imageStd[c]));
        if (float32Math !== table[c * 256 + v]) differ++;
      }
    }
    assert.ok(differ > 0, 'a float32 Mul by 1/255 differs for some (channel, byte)');
  });

  it('refuses a rescale_factor whose float32 division differs from transformers', () => {
    assert.throws(() => graphNormalization({ ...QWEN, rescaleFactor: 0.00392 }), /rescale_factor 0.00392: .* differs/);
  });

  for (const [w, h] of [[28, 28], [84, 56], [56, 140], [308, 28], [196, 252]]) {
    it(`equals toPixelValues bit for bit on a ${w}x${h} image`, async () => {
      const s = await patchifySession();
      const img = image(w, h);
      const out = await s.run({
        pixels: u8(img.data, [h, w, 3]), rescale_divisor: f32(norm.divisor, [1, 1, 1, 1]),
        image_mean: f32(norm.mean, [1, 3, 1, 1]), image_std: f32(norm.std, [1, 3, 1, 1]),
      });
      const got = out.pixel_values;
      assert.deepEqual(got.dims, [(h / 14) * (w / 14), 1176]);
      const want = toPixelValues(img, QWEN, QWEN);
      const data = got.data as Float32Array;
      assert.equal(data.length, want.length);
      const bad = data.findIndex((v, i) => !Object.is(v, want[i]));
      assert.equal(bad, -1, `first difference at ${bad}: ${data[bad]} vs ${want[bad]}`);
    });
  }
});
