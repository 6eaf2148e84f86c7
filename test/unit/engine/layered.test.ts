/**
 * The layered step graph on a random 3-layer checkpoint, on the real ONNX Runtime
 * CPU provider, against the uniform step graph: driven through `step` it is the
 * uniform graph; rows that exit after some layer, or are given at every layer, with
 * the exact K/V of a full prefill given where they are not computed, leave the
 * logits those of the full prefill; and a decode step after a layered prefill
 * (each layer's present in its own row order) is the decode step after a full one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildStepGraph } from '../../../kernels/graphs/llm';
import { loadCheckpoint } from '../../../server/src/engine/checkpoint';
import { GraphFolder } from '../../../server/src/engine/graph-files';
import { layeredIndexFeeds, planLayered, planUniform } from '../../../server/src/engine/layered';
import { DUMMY_ROW, LayeredPast, Past, VlModel, layerRows } from '../../../server/src/engine/model';
import { Tensor, f32, toFloat32 } from '../../../server/src/engine/ort';
import { ropePositions, selectPositions } from '../../../server/src/engine/positions';
import { visionInputs } from '../../../server/src/engine/vision-inputs';
import { writeRandomCheckpoint } from '../../support/random-checkpoint';
import { maxAbsDiff } from '../../support/images';

const LAYERS = 3;

/** Rows `idx` of a host [n, nKv, D] float32 tensor, as a new tensor. */
function pick(t: Tensor, idx: readonly number[]): Tensor {
  const [, kv, d] = t.dims as number[];
  const w = kv * d;
  const src = t.data as Float32Array;
  const out = new Float32Array(idx.length * w);
  idx.forEach((r, i) => out.set(src.subarray(r * w, (r + 1) * w), i * w));
  return f32(out, [idx.length, kv, d]);
}

/** A deterministic permutation (the given rows of a layer may come in any order). */
const shuffle = (xs: readonly number[], seed: number) =>
  xs.map((x, i) => ({ x, k: Math.sin((i + 1) * 12.9898 + seed * 78.233) })).sort((a, b) => a.k - b.k).map((e) => e.x);

for (const [family, attention] of [['qwen2_5_vl', 'manual'], ['qwen2_vl', 'mha'], ['qwen2_5_vl', 'onnx']] as const) {
  describe(`layered step graph (${family}, ${attention} attention, ${LAYERS} layers, random weights, CPU)`, () => {
    let tmp: string;
    let uniform: VlModel;
    let layered: VlModel;
    let emb: Float32Array;
    // 4 text rows, a 6x8-token image (12x16 patches), 5 text rows.
    const gh = 12, gw = 16, nImg = (gh / 2) * (gw / 2), n = 4 + nImg + 5;
    const isImg = (r: number) => r >= 4 && r < 4 + nImg;
    const ids = Array.from({ length: n }, (_, i) => (isImg(i) ? 290 : (i * 13) % 250));
    const pos = ropePositions(n, [{ row0: 4, h: gh / 2, w: gw / 2 }]);
    const rowsInput = (rows: readonly number[]) => ({
      inputIds: rows.map((r) => ids[r]), rows, positions: selectPositions(pos, rows),
      imageEmbeds: emb, imageRowOf: rows.map((r) => (isImg(r) ? r - 4 : -1)),
    });
    const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

    /**
     * A LayeredPast over the rows of a uniform present `full` (rows [dummy, 0..m-1]):
     * layer l is given `given[l]` (sequence rows; none: the dummy) with their exact K/V.
     */
    const exactPast = (full: Past, given: readonly (readonly number[])[]): LayeredPast => {
      const [, kv, d] = full.keys[0].dims as number[];
      const m = full.rows.length - 1;
      const empty = f32(new Float32Array(0), [0, kv, d]);
      const at = (l: number) => given[l].map((r) => r + 1); // present index of row r
      return {
        rows: range(0, m), positions: selectPositions(pos, range(0, m)),
        index: given.map((rows) => [...rows]),
        keys: given.map((g, l) => (g.length ? pick(full.keys[l], at(l)) : empty)),
        values: given.map((g, l) => (g.length ? pick(full.values[l], at(l)) : empty)),
      };
    };

    /** Largest |difference| between every row of a layered present and that row in a uniform present. */
    const presentDiff = async (p: LayeredPast, full: Past) => {
      let m = 0;
      for (let l = 0; l < LAYERS; l++) {
        const rows = layerRows(p, l);
        const real = rows.map((r, i) => [r, i]).filter(([r]) => r !== DUMMY_ROW);
        const at = real.map(([r]) => full.rows.indexOf(r));
        assert.ok(at.every((i) => i >= 0));
        for (const [mine, ref] of [[p.keys[l], full.keys[l]], [p.values[l], full.values[l]]]) {
          m = Math.max(m, maxAbsDiff(await toFloat32(pick(mine, real.map(([, i]) => i))), await toFloat32(pick(ref, at))));
        }
      }
      return m;
    };

    before(async () => {
      tmp = mkdtempSync(join(tmpdir(), 'vlcache-layered-'));
      process.env.VLCACHE_HOME = join(tmp, 'home');
      writeRandomCheckpoint(join(tmp, 'model'), { family, seed: 7, tied: family === 'qwen2_vl', layers: LAYERS });
      const ckpt = loadCheckpoint(join(tmp, 'model'));
      uniform = await VlModel.load(ckpt, { device: 'cpu', attention });
      layered = await VlModel.load(ckpt, { device: 'cpu', attention, layered: true });
      const image = { width: gw * 14, height: gh * 14, data: Uint8Array.from({ length: gh * gw * 588 }, (_, i) => Math.floor(128 + 127 * Math.cos(i * 0.31))) }; // [gh*14, gw*14, 3] uint8
      emb = await uniform.encodeImage(visionInputs(ckpt.config.vision, ckpt.preprocess, image));
    });
    after(async () => {
      await uniform.dispose();
      await layered.dispose();
      rmSync(tmp, { recursive: true, force: true });
    });

    it('is the uniform step graph when driven through step(): prefill, a selective step and a decode step', async () => {
      const head = range(0, n - 1);
      const u = await uniform.step({ ...rowsInput(head), logitRows: [0, 20, n - 2] });
      const l = await layered.step({ ...rowsInput(head), logitRows: [0, 20, n - 2] });
      assert.ok(maxAbsDiff(u.logits, l.logits) < 1e-5);
      assert.deepEqual(l.present.rows, u.present.rows);
      assert.deepEqual(l.present.positions, u.present.positions);
      assert.ok(await presentDiff(layeredView(l.present), u.present) < 1e-5);

      // Selective (VLCache shape): image rows past the leading 6 given, the rest computed.
      const given = u.present.rows.map((_, i) => i).filter((i) => i > 0 && isImg(i - 1) && i - 1 >= 10);
      const past: Past = {
        rows: given.map((i) => u.present.rows[i]), positions: selectPositions(pos, given.map((i) => i - 1)),
        keys: u.present.keys.map((t) => pick(t, given)), values: u.present.values.map((t) => pick(t, given)),
      };
      const rest = head.filter((r) => !(isImg(r) && r >= 10));
      const us = await uniform.step({ ...rowsInput(rest), past, logitRows: [rest.length - 1] });
      const ls = await layered.step({ ...rowsInput(rest), past, logitRows: [rest.length - 1] });
      assert.ok(maxAbsDiff(us.logits, ls.logits) < 1e-5);

      const ud = await uniform.step({ ...rowsInput([n - 1]), past: u.present, logitRows: [0] });
      const ld = await layered.step({ ...rowsInput([n - 1]), past: l.present, logitRows: [0] });
      assert.ok(maxAbsDiff(ud.logits, ld.logits) < 1e-5);
      assert.deepEqual(ld.present.rows, ud.present.rows);
      assert.ok(await presentDiff(layeredView(ld.present), ud.present) < 1e-5);
    });

    /**
     * The nested schedule on rows [0, m): every row computed at layer 0; rows R1 exit after
     * layer 0 and rows R2 after layer 1, given from then on with the exact K/V of `full`
     * (each layer in its own order). Returns the layered run and its last layer's rows.
     */
    const nested = async (full: Past, m: number, logitRowsOf: readonly number[]) => {
      const all = range(0, m);
      const r1 = all.filter((r) => isImg(r) && r >= 12 && r < 36); // image rows after the leading 8
      const r2 = all.filter((r) => (isImg(r) && r >= 40) || r === 2); // more image rows and a text row
      const rows1 = all.filter((r) => !r1.includes(r));
      const rows2 = rows1.filter((r) => !r2.includes(r));
      const past = exactPast(full, [[], shuffle(r1, 1), shuffle([...r1, ...r2], 2)]);
      const out = await layered.stepLayered({
        ...rowsInput(all), past,
        keep: [rows1.map((r) => all.indexOf(r)), rows2.map((r) => rows1.indexOf(r))],
        logitRows: logitRowsOf.map((r) => rows2.indexOf(r)),
      });
      return { out, rows2, r1, r2 };
    };

    it('gives the full-prefill logits when rows exit after layers 0 and 1 with their exact K/V given deeper', async () => {
      const full = await uniform.step({ ...rowsInput(range(0, n)), logitRows: [n - 1, n - 3, 3] });
      const { out, r1, r2 } = await nested(full.present, n, [n - 1, n - 3, 3]);
      assert.ok(maxAbsDiff(full.logits, out.logits) < 1e-5);
      // Per layer: given rows first, then that layer's computed rows.
      assert.deepEqual(layerRows(out.present, 0), [DUMMY_ROW, ...range(0, n)]);
      assert.deepEqual(layerRows(out.present, 1).slice(0, r1.length), shuffle(r1, 1));
      assert.equal(layerRows(out.present, 2).length, n);
      assert.equal(out.present.keys[2].dims[0], n);
      // Every present row (given or fresh) holds the full prefill's K/V.
      assert.ok(await presentDiff(out.present, full.present) < 1e-5);
      assert.ok(r2.length > 0);
    });

    it('gives the full-prefill logits when rows are given at every layer, in a different order per layer', async () => {
      const full = await uniform.step({ ...rowsInput(range(0, n)), logitRows: [n - 1] });
      const reused = range(0, n).filter((r) => isImg(r) && r >= 4 + 6);
      const computed = range(0, n).filter((r) => !reused.includes(r));
      const past = exactPast(full.present, [0, 1, 2].map((s) => shuffle(reused, s)));
      const out = await layered.stepLayered({ ...rowsInput(computed), past, logitRows: [computed.length - 1] });
      assert.ok(maxAbsDiff(full.logits, out.logits) < 1e-5);
      // Nested and given-everywhere together: the reused rows given, a few computed rows exiting after layer 0.
      const exit = computed.filter((r) => isImg(r) && r >= 6);
      const kept = computed.filter((r) => !exit.includes(r));
      const past2 = exactPast(full.present, [shuffle(reused, 3), shuffle([...reused, ...exit], 4), [...exit, ...reused]]);
      const out2 = await layered.stepLayered({
        ...rowsInput(computed), past: past2,
        keep: [kept.map((r) => computed.indexOf(r)), kept.map((_, i) => i)], logitRows: [kept.length - 1],
      });
      assert.ok(exit.length > 0 && maxAbsDiff(full.logits, out2.logits) < 1e-5);
    });

    it('decodes after a layered prefill exactly as after a full prefill', async () => {
      const head = range(0, n - 1);
      const prefill = await uniform.step({ ...rowsInput(head), logitRows: [n - 2] });
      const { out } = await nested(prefill.present, n - 1, [n - 2]);
      assert.ok(maxAbsDiff(prefill.logits, out.logits) < 1e-5);
      const ud = await uniform.step({ ...rowsInput([n - 1]), past: prefill.present, logitRows: [0] });
      const ld = await layered.stepLayered({ ...rowsInput([n - 1]), past: out.present, logitRows: [0] });
      assert.ok(maxAbsDiff(ud.logits, ld.logits) < 1e-5);
      assert.ok(await presentDiff(ld.present, ud.present) < 1e-5);
      // The decoded row comes last at every layer, after that layer's own rows.
      for (let l = 0; l < LAYERS; l++) assert.equal(layerRows(ld.present, l).at(-1), n - 1);
    });

    it('refuses stepLayered on a uniform model and malformed keep lists', async () => {
      await assert.rejects(uniform.stepLayered({ ...rowsInput([0, 1]), logitRows: [1] }), /layered: true/);
      await assert.rejects(layered.stepLayered({ ...rowsInput([0, 1, 2]), keep: [[2, 1]], logitRows: [0] }), /ascend/);
      await assert.rejects(layered.stepLayered({ ...rowsInput([0, 1, 2]), keep: [[0, 1], [0, 1]], logitRows: [2] }), /logit rows/);
    });
  });
}

/** A uniform Past as a LayeredPast view with the same row order (index i = present row i). */
function layeredView(p: Past): LayeredPast {
  return { rows: [...p.rows], positions: [...p.positions], index: p.keys.map(() => p.rows.map((_, i) => i)), keys: p.keys, values: p.values };
}

describe('layered step graph: build', () => {
  it('has int32 index inputs and its own per-layer keep/past_index inputs, and leaves the uniform graph alone', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'vlcache-layered-build-'));
    try {
      process.env.VLCACHE_HOME = join(tmp, 'home');
      writeRandomCheckpoint(join(tmp, 'model'), { family: 'qwen2_5_vl', layers: LAYERS });
      const ckpt = loadCheckpoint(join(tmp, 'model'));
      const folder = GraphFolder.open(ckpt.dir, ckpt.fingerprint, ckpt.weights);
      const base = { computeDtype: 'float16', attention: 'mha', withImages: true, withPast: true } as const;
      const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');
      const layeredText = text(buildStepGraph(ckpt.config.text, folder.lookup, { ...base, layered: true }));
      const uniformText = text(buildStepGraph(ckpt.config.text, folder.lookup, base));
      for (const name of ['all_positions', 'q_index', 'keep.1', 'keep.2', 'past_index.0', 'past_index.2', 'present_key.2']) {
        assert.ok(layeredText.includes(name), `the layered graph has ${name}`);
      }
      assert.ok(!layeredText.includes('keep.0') && !layeredText.includes('q_rows'));
      assert.ok(!uniformText.includes('past_index') && uniformText.includes('q_rows'));
      // Nodes per decoder layer (named "layer<l>/n_<Op>_<k>"): the layered graph's index
      // bookkeeping, per-layer mask and row Gathers cost 10 nodes per layer more (9 before the
      // uniform graph's rotated keys joined the reshape after them, ModelGraph.reshape).
      const perLayer = (t: string, l: number) => (t.match(new RegExp(`layer${l}/n_[A-Z][A-Za-z]*_\\d+`, 'g')) ?? []).length;
      assert.equal(perLayer(layeredText, 1) - perLayer(uniformText, 1), 10);
      assert.throws(() => buildStepGraph(ckpt.config.text, folder.lookup, { ...base, withPast: false, layered: true }), /withPast/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('layered step: row tables and index feeds', () => {
  const kv = (rows: number) => f32(new Float32Array(rows * 4), [rows, 2, 2]);
  const past: LayeredPast = {
    rows: [0, 1, 2, 5], positions: [0, 1, 2, 9, 0, 1, 2, 9, 0, 1, 2, 9],
    index: [[3, 0], [], [1]], keys: [kv(2), kv(0), kv(1)], values: [kv(2), kv(0), kv(1)],
  };
  const input = { inputIds: [7, 8], rows: [3, 4], positions: [3, 4, 3, 4, 3, 4] };

  it('passes the dummy row only to layers given nothing, after every real row, and never an empty or non-int32 index', () => {
    const run = planLayered(LAYERS, { ...input, past, keep: [[1], [0]], logitRows: [0] });
    assert.deepEqual(run.rows, [0, 1, 2, 3, 4, 5, DUMMY_ROW]);
    assert.deepEqual(run.dummy, [false, true, false]);
    assert.deepEqual(run.pastIndex, [[5, 0], [6], [1]]);
    assert.deepEqual(run.computed, [[3, 4], [4], [4]]);
    const feeds = layeredIndexFeeds(run, [0]);
    assert.deepEqual(Object.keys(feeds).sort(),
      ['all_positions', 'keep.1', 'keep.2', 'logit_rows', 'past_index.0', 'past_index.1', 'past_index.2', 'q_index']);
    for (const [name, t] of Object.entries(feeds)) {
      assert.equal(t.type, 'int32', name);
      assert.ok(t.dims.every((d) => d > 0), `${name} is not empty`);
    }
    assert.deepEqual([...(feeds.all_positions.data as Int32Array)].slice(0, 7), [0, 1, 2, 3, 4, 9, 0]);
  });

  it('translates a uniform step (duplicate dummy rows included) and rejects a row with two positions', () => {
    const run = planUniform(LAYERS, { rows: [DUMMY_ROW, 0, 1, DUMMY_ROW], positions: [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0] },
      { rows: [2], positions: [2, 2, 2], logitRows: [0] });
    assert.deepEqual(run.rows, [0, 1, 2, DUMMY_ROW]);
    assert.deepEqual(run.pastIndex[2], [3, 0, 1, 3]);
    assert.deepEqual(run.keep, [[0], [0]]);
    assert.throws(() => planLayered(LAYERS, { ...input, rows: [2, 4], past, logitRows: [0] }), /two positions/);
    assert.throws(() => planLayered(LAYERS, { ...input, past: { ...past, keys: [kv(1), kv(0), kv(1)] }, logitRows: [0] }), /K\/V of 1/);
  });
});
