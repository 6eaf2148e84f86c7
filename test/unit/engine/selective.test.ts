/**
 * Invariants of the selective-prefill graph on a random checkpoint, on the real
 * ONNX Runtime CPU provider: however the rows are split between "given" and
 * "computed", and in whatever order the given rows arrive, the logits are those
 * of one full prefill.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '../../../server/src/engine/checkpoint';
import { Past, VlModel } from '../../../server/src/engine/model';
import { f32 } from '../../../server/src/engine/ort';
import { ropePositions, selectPositions } from '../../../server/src/engine/positions';
import { visionInputs } from '../../../server/src/engine/vision-inputs';
import { writeRandomCheckpoint } from '../../support/random-checkpoint';
import { maxAbsDiff } from '../../support/images';


for (const [family, attention] of [['qwen2_vl', 'manual'], ['qwen2_5_vl', 'manual'], ['qwen2_5_vl', 'mha'], ['qwen2_vl', 'onnx']] as const) {
  describe(`selective prefill (${family}, ${attention} attention, random weights, CPU)`, () => {
    let tmp: string;
    let model: VlModel;
    let emb: Float32Array;
    // 5 text rows, a 10x12-token image (20x24 patches), 4 text rows.
    const gh = 20, gw = 24, nImg = (gh / 2) * (gw / 2), n = 5 + nImg + 4;
    const isImg = (r: number) => r >= 5 && r < 5 + nImg;
    const ids = Array.from({ length: n }, (_, i) => (isImg(i) ? 290 : (i * 7) % 250));
    const pos = ropePositions(n, [{ row0: 5, h: gh / 2, w: gw / 2 }]);
    const run = (rows: number[], past?: Past, logitRow = rows.length - 1) => model.step({
      inputIds: rows.map((r) => ids[r]), rows, positions: selectPositions(pos, rows), past,
      imageEmbeds: emb, imageRowOf: rows.map((r) => (isImg(r) ? r - 5 : -1)), logitRows: [logitRow],
    });
    const all = Array.from({ length: n }, (_, i) => i);

    before(async () => {
      tmp = mkdtempSync(join(tmpdir(), 'vlcache-sel-'));
      process.env.VLCACHE_HOME = join(tmp, 'home');
      writeRandomCheckpoint(join(tmp, 'model'), { family, tied: family === 'qwen2_vl' });
      const ckpt = loadCheckpoint(join(tmp, 'model'));
      model = await VlModel.load(ckpt, { device: 'cpu', attention });
      const image = { width: gw * 14, height: gh * 14, data: Uint8Array.from({ length: gh * gw * 588 }, (_, i) => Math.floor(128 + 127 * Math.sin(i * 0.37))) }; // [gh*14, gw*14, 3] uint8
      emb = await model.encodeImage(visionInputs(ckpt.config.vision, ckpt.preprocess, image));
    });
    after(async () => {
      await model.dispose();
      rmSync(tmp, { recursive: true, force: true });
    });

    it('gives the full-prefill logits when the last rows are computed against the others given', async () => {
      const full = await run(all);
      const head = await run(all.slice(0, n - 3));
      const tail = await run(all.slice(n - 3), head.present);
      assert.ok(maxAbsDiff(full.logits, tail.logits) < 1e-5);
    });

    it('gives the full-prefill logits when only leading image rows and the text are computed (VLCache shape)', async () => {
      const full = await run(all);
      // Compute every image row except the leading 6 ... then recompute rows as a VLCache plan would:
      // the given rows carry exact keys here, so the result must match the full prefill.
      const first = await run(all);
      const reuse = all.filter((r) => isImg(r) && r >= 5 + 6);
      const computed = all.filter((r) => !reuse.includes(r));
      const keep = reuse.map((r) => r + 1); // present rows are [dummy, 0..n-1]
      const past = gather(first.present, keep);
      const sel = await run(computed, past);
      assert.ok(maxAbsDiff(full.logits, sel.logits) < 1e-5);
    });

    it('decodes one row against the prefilled rows exactly as a longer prefill would', async () => {
      const full = await run(all);
      const head = await run(all.slice(0, n - 1));
      const step = await run([n - 1], head.present, 0);
      assert.ok(maxAbsDiff(full.logits, step.logits) < 1e-5);
    });
  });
}

/** The given subset (indices into the present's rows) of a host-resident Past; tensors are [rows, nKv, D]. */
function gather(p: Past, keep: number[]): Past {
  const nAll = p.rows.length;
  const wrap = (t: Past['keys'][number]) => {
    const [, kv, d] = t.dims as number[];
    const src = t.data as Float32Array;
    const out = new Float32Array(keep.length * kv * d);
    keep.forEach((r, i) => out.set(src.subarray(r * kv * d, (r + 1) * kv * d), i * kv * d));
    return f32(out, [keep.length, kv, d]);
  };
  const pos: number[] = [];
  for (let s = 0; s < 3; s++) for (const r of keep) pos.push(p.positions[s * nAll + r]);
  return { rows: keep.map((r) => p.rows[r]), positions: pos, keys: p.keys.map(wrap), values: p.values.map(wrap) };
}
