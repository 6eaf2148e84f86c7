/**
 * The probe graph (the step graph cut after layer 1's K/V, no LM head) on a random
 * 3-layer checkpoint, on the real ONNX Runtime CPU provider: its present K/V of
 * layers 0-1 are those of the full step graph for the same rows, with or without
 * given rows, and it references neither the final norm, the LM head nor layer 2.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildStepGraph } from '../../../kernels/graphs/llm';
import { Checkpoint } from '../../../server/src/engine/checkpoint';
import { GraphFolder } from '../../../server/src/engine/graph-files';
import { PROBE_LAYERS, Past, VlModel } from '../../../server/src/engine/model';
import { toFloat32 } from '../../../server/src/engine/ort';
import { ropePositions, selectPositions } from '../../../server/src/engine/positions';
import { visionInputs } from '../../../server/src/engine/vision-inputs';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';
import { maxAbsDiff } from '../../support/images';

/** Largest |difference| over layers [0, layers) of two Pasts' keys and values, rows in the same order. */
async function pastDiff(a: Past, b: Past, layers: number): Promise<number> {
  assert.deepEqual(a.rows, b.rows);
  let m = 0;
  for (let l = 0; l < layers; l++) {
    m = Math.max(m, maxAbsDiff(await toFloat32(a.keys[l]), await toFloat32(b.keys[l])));
    m = Math.max(m, maxAbsDiff(await toFloat32(a.values[l]), await toFloat32(b.values[l])));
  }
  return m;
}

describe('probe graph (3 layers, random weights, CPU)', () => {
  let remove: () => void;
  let ckpt: Checkpoint;
  let model: VlModel;
  let emb: Float32Array;
  // 4 text rows, a 6x8-token image (12x16 patches), 5 text rows.
  const gh = 12, gw = 16, nImg = (gh / 2) * (gw / 2), n = 4 + nImg + 5;
  const isImg = (r: number) => r >= 4 && r < 4 + nImg;
  const ids = Array.from({ length: n }, (_, i) => (isImg(i) ? 290 : (i * 11) % 250));
  const pos = ropePositions(n, [{ row0: 4, h: gh / 2, w: gw / 2 }]);
  const input = (rows: number[], past?: Past) => ({
    inputIds: rows.map((r) => ids[r]), rows, positions: selectPositions(pos, rows), past,
    imageEmbeds: emb, imageRowOf: rows.map((r) => (isImg(r) ? r - 4 : -1)), logitRows: [rows.length - 1],
  });
  const all = Array.from({ length: n }, (_, i) => i);

  before(async () => {
    const folder = randomCheckpointInTemp('vlcache-probe-', { family: 'qwen2_5_vl', seed: 5, tied: false, layers: 3 });
    ({ ckpt, remove } = folder);
    model = await VlModel.load(ckpt, { device: 'cpu' });
    const image = { width: gw * 14, height: gh * 14, data: Uint8Array.from({ length: gh * gw * 588 }, (_, i) => Math.floor(128 + 127 * Math.cos(i * 0.29))) }; // [gh*14, gw*14, 3] uint8
    emb = await model.encodeImage(visionInputs(ckpt.config.vision, ckpt.preprocess, image));
  });
  after(async () => {
    await model.dispose();
    remove();
  });

  it('returns the present K/V of layers 0-1 of a full prefill, as the step graph does', async () => {
    const full = await model.step(input(all));
    const probe = await model.probe(input(all));
    assert.equal(probe.keys.length, PROBE_LAYERS);
    assert.equal(probe.values.length, PROBE_LAYERS);
    assert.deepEqual(probe.positions, full.present.positions);
    assert.ok(await pastDiff(probe, full.present, PROBE_LAYERS) < 1e-5);
  });

  it('matches the step graph when some rows are given (selective shape)', async () => {
    const head = await model.step(input(all.slice(0, 10)));
    const rest = all.slice(10);
    const full = await model.step(input(rest, head.present));
    const probe = await model.probe(input(rest, head.present));
    assert.ok(await pastDiff(probe, full.present, PROBE_LAYERS) < 1e-5);
  });

  it('loads neither the final norm, the LM head nor later layers, and has no logits', () => {
    const folder = GraphFolder.open(ckpt.dir, ckpt.fingerprint, ckpt.weights);
    const base = { computeDtype: 'float32', attention: 'manual', withImages: true, withPast: true } as const;
    const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');
    const step = text(buildStepGraph(ckpt.config.text, folder.lookup, base));
    const probe = text(buildStepGraph(ckpt.config.text, folder.lookup, { ...base, maxLayers: 2, withLogits: false }));
    for (const name of ['lm_head.weight', 'model.norm.weight', 'model.layers.2.', 'logit_rows', 'logits', 'present_key.2']) {
      assert.ok(step.includes(name), `the step graph has ${name}`);
      assert.ok(!probe.includes(name), `the probe graph has no ${name}`);
    }
    // Layer 1 of the probe projects k and v only: its q_proj and MLP weights are never read.
    for (const name of ['model.layers.1.self_attn.q_proj', 'model.layers.1.mlp.', 'model.layers.1.post_attention']) {
      assert.ok(!probe.includes(name), `the probe graph has no ${name}`);
    }
    assert.ok(probe.includes('present_value.1') && probe.includes('model.layers.1.self_attn.v_proj'));
  });
});
