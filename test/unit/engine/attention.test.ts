/**
 * The three attention implementations in the generated graphs (explicit
 * MatMul/Softmax, com.microsoft.MultiHeadAttention, and ONNX's Attention for the
 * language model) compute the same thing: windowed and full vision attention, and
 * the masked GQA attention of the language model, on the real ONNX Runtime CPU provider.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint, loadCheckpoint } from '../../../server/src/engine/checkpoint';
import { type AttentionKind, VlModel } from '../../../server/src/engine/model';
import { ropePositions, selectPositions } from '../../../server/src/engine/positions';
import { visionInputs } from '../../../server/src/engine/vision-inputs';
import { writeRandomCheckpoint } from '../../support/random-checkpoint';
import { GraphFolder } from '../../../server/src/engine/graph-files';
import { buildStepGraph } from '../../../kernels/graphs/llm';
import { maxAbsDiff } from '../../support/images';


async function run(ckpt: Checkpoint, attention: AttentionKind): Promise<{ emb: Float32Array; logits: Float32Array }> {
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
      for (const other of ['mha', 'onnx'] as const) {
        const b = await run(ckpt, other);
        assert.ok(maxAbsDiff(a.emb, b.emb) < 1e-5, `vision embeddings (${other})`);
        assert.ok(maxAbsDiff(a.logits, b.logits) < 1e-5, `logits (${other})`);
      }
    });
  });
}

describe('ONNX Attention in the step graph', () => {
  it('groups query heads over key/value heads itself: one Attention per layer, no Expand, 5 nodes fewer per layer than MultiHeadAttention', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'vlcache-attn-nodes-'));
    try {
      process.env.VLCACHE_HOME = join(tmp, 'home');
      writeRandomCheckpoint(join(tmp, 'model'), { family: 'qwen2_5_vl', layers: 3 });
      const ckpt = loadCheckpoint(join(tmp, 'model'));
      const folder = GraphFolder.open(ckpt.dir, ckpt.fingerprint, ckpt.weights);
      const graph = (attention: AttentionKind) => Buffer.from(buildStepGraph(ckpt.config.text, folder.lookup,
        { computeDtype: 'float16', attention, withImages: true, withPast: true })).toString('latin1');
      // Nodes are named "layer<l>/n_<Op>_<k>".
      const ops = (t: string, l: number) => (t.match(new RegExp(`layer${l}/n_([A-Z][A-Za-z]*)_\\d+`, 'g')) ?? []).map((m) => m.split('_')[1]);
      const [mha, onnx] = [graph('mha'), graph('onnx')];
      for (let l = 0; l < 3; l++) {
        assert.equal(ops(onnx, l).filter((o) => o === 'Attention').length, 1, `layer ${l}: one Attention`);
        assert.ok(!ops(onnx, l).includes('Expand') && !ops(onnx, l).includes('MultiHeadAttention'), `layer ${l}: ${ops(onnx, l).join(' ')}`);
        assert.equal(ops(mha, l).length - ops(onnx, l).length, 5, `layer ${l}`);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
