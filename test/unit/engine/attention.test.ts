/**
 * The two attention implementations in the generated graphs (explicit
 * MatMul/Softmax and com.microsoft.MultiHeadAttention) compute the same thing:
 * windowed and full vision attention, and the masked GQA attention of the
 * language model, on the real ONNX Runtime CPU provider.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint, loadCheckpoint } from '../../../server/src/engine/checkpoint';
import { VlModel } from '../../../server/src/engine/model';
import { ropePositions, selectPositions } from '../../../server/src/engine/positions';
import { visionInputs } from '../../../server/src/engine/vision-inputs';
import { writeRandomCheckpoint } from '../../support/random-checkpoint';
import { maxAbsDiff } from '../../support/images';


async function run(ckpt: Checkpoint, attention: 'manual' | 'mha'): Promise<{ emb: Float32Array; logits: Float32Array }> {
  const m = await VlModel.load(ckpt, { device: 'cpu', attention });
  try {
    const gh = 20, gw = 24, nImg = 120, n = 5 + nImg + 4;
    const image = { width: gw * 14, height: gh * 14, data: Uint8Array.from({ length: gh * gw * 588 }, (_, i) => Math.floor(128 + 127 * Math.sin(i * 0.37))) }; // [gh*14, gw*14, 3] uint8
    const emb = await m.encodeImage(visionInputs(ckpt.config.vision, ckpt.preprocess, image));
    const rows = Array.from({ length: n }, (_, i) => i);
    const isImg = (r: number) => r >= 5 && r < 5 + nImg;
    const pos = ropePositions(n, [{ row0: 5, h: 10, w: 12 }]);
    const out = await m.step({
      inputIds: rows.map((r) => (isImg(r) ? 290 : (r * 7) % 250)), rows, positions: selectPositions(pos, rows),
      imageEmbeds: emb, imageRowOf: rows.map((r) => (isImg(r) ? r - 5 : -1)), logitRows: [n - 1],
    });
    return { emb, logits: out.logits };
  } finally {
    await m.dispose();
  }
}

for (const family of ['qwen2_vl', 'qwen2_5_vl'] as const) {
  describe(`attention implementations (${family})`, () => {
    let tmp: string;
    let ckpt: Checkpoint;
    before(() => {
      tmp = mkdtempSync(join(tmpdir(), 'vlcache-attn-'));
      process.env.VLCACHE_HOME = join(tmp, 'home');
      writeRandomCheckpoint(join(tmp, 'model'), { family, tied: true, seed: 3 });
      ckpt = loadCheckpoint(join(tmp, 'model'));
    });
    after(() => rmSync(tmp, { recursive: true, force: true }));

    it('agree on vision embeddings and logits within 1e-5', async () => {
      const a = await run(ckpt, 'manual');
      const b = await run(ckpt, 'mha');
      assert.ok(maxAbsDiff(a.emb, b.emb) < 1e-5, 'vision embeddings');
      assert.ok(maxAbsDiff(a.logits, b.logits) < 1e-5, 'logits');
    });
  });
}
