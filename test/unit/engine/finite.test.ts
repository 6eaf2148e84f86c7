/**
 * A NaN or infinite value is an error naming the stage, never an answer (issue 13, "Bad input"):
 * random checkpoints with one NaN weight, on the real ONNX Runtime CPU provider.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VlModel } from '../../../server/src/engine/model';
import { NonFiniteError, assertFinite } from '../../../server/src/engine/finite';
import { ropePositions, selectPositions } from '../../../server/src/engine/positions';
import { visionInputs } from '../../../server/src/engine/vision-inputs';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';

describe('assertFinite', () => {
  it('accepts finite values, including the extremes of float32', () => {
    assertFinite(Float32Array.of(0, -0, 3.4e38, -3.4e38, 1e-45), 'language model', 'logits [5]');
  });
  for (const bad of [NaN, Infinity, -Infinity]) {
    it(`throws NonFiniteError at the first ${bad}`, () => {
      assert.throws(() => assertFinite(Float32Array.of(1, 2, bad, NaN), 'vision encoder', 'image embeddings [1, 4]'),
        (e: unknown) => e instanceof NonFiniteError && e.stage === 'vision encoder' && e.index === 2 &&
          Object.is(e.value, bad) && /vision encoder returned .* image embeddings \[1, 4\] \(value 2\)/.test(e.message));
    });
  }
});

for (const family of ['qwen2_vl', 'qwen2_5_vl'] as const) {
  describe(`non-finite outputs (${family}, random weights, CPU)`, () => {
    const removers: (() => void)[] = [];
    after(() => removers.forEach((r) => r()));
    const load = async (nanIn: string[]) => {
      const t = randomCheckpointInTemp('vlcache-nan-', { family, tied: true, nanIn });
      removers.push(t.remove);
      return VlModel.load(t.ckpt, { device: 'cpu', precision: 'fp32' });
    };
    const gh = 4, gw = 6; // one 56x84 image: 24 patches, 6 tokens
    const pixels = () => ({ width: gw * 14, height: gh * 14, data: Uint8Array.from({ length: gh * gw * 588 }, (_, i) => Math.floor(128 + 127 * Math.sin(i * 1))) }); // [56, 84, 3] uint8

    it('a NaN weight in the vision merger: encodeImage throws, naming the vision encoder', async () => {
      const model = await load(['visual.merger.mlp.2.bias']);
      try {
        await assert.rejects(model.encodeImage(visionInputs(model.checkpoint.config.vision, model.checkpoint.preprocess, pixels())),
          (e: unknown) => e instanceof NonFiniteError && e.stage === 'vision encoder' && /image embeddings \[6, 32\]/.test(e.message));
      } finally {
        await model.dispose();
      }
    });

    it('a NaN weight in the final norm: step throws, naming the language model', async () => {
      const model = await load(['model.norm.weight']);
      try {
        const n = 5;
        const rows = Array.from({ length: n }, (_, i) => i);
        await assert.rejects(model.step({
          inputIds: [10, 20, 30, 40, 50], rows, positions: selectPositions(ropePositions(n, []), rows), logitRows: [n - 1],
        }), (e: unknown) => e instanceof NonFiniteError && e.stage === 'language model' && /logits \[1, 300\]/.test(e.message));
      } finally {
        await model.dispose();
      }
    });

    it('the same checkpoints without the NaN run (the checks do not fire on finite outputs)', async () => {
      const model = await load([]);
      try {
        const emb = await model.encodeImage(visionInputs(model.checkpoint.config.vision, model.checkpoint.preprocess, pixels()));
        assert.equal(emb.length, 6 * 32);
        const rows = [0, 1, 2];
        const out = await model.step({ inputIds: [1, 2, 3], rows, positions: selectPositions(ropePositions(3, []), rows), logitRows: [2] });
        assert.equal(out.logits.length, 300);
      } finally {
        await model.dispose();
      }
    });
  });
}
