/**
 * CacheBlend end to end on a random 3-layer Qwen2.5-VL checkpoint, through the
 * generator, the reuse engine and the real ONNX Runtime CPU provider: the rows it
 * recomputes are exactly the ceil(r * nImg) rows of each image whose layer-1 V
 * deviates most from the cached entry (deviation recomputed here from the probe's
 * output); r = 1 equals full, r = 0 equals naive; an entry equal to the fresh KV
 * gives a deterministic selection; the probe is not counted as computed rows.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { Past, VlModel } from '../../../server/src/engine/model';
import { toFloat32 } from '../../../server/src/engine/ort';
import { blendCount, selectByDeviation } from '../../../server/src/planner/cacheblend';
import { AskRequest, AskResult, Generator } from '../../../server/src/ask/generate';
import { MapStore } from '../../../server/src/cache/map-store';
import { Plan } from '../../../server/src/planner/plan';
import type { CacheEntry } from '../../../server/src/cache/entry';
import { ReuseEngine } from '../../../server/src/ask/vlcache';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';
import { maxAbsDiff } from '../../support/images';

function png(w: number, h: number, seed: number): Uint8Array {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < p.data.length; i++) p.data[i] = (i % 4 === 3) ? 255 : ((i * 37 + seed * 11 + (i >> 9) * 5) >> 2) & 0xff;
  return PNG.sync.write(p);
}

/** A MapStore that remembers the image-KV entries put into it, in order. */
class RecordingStore extends MapStore {
  readonly kv: CacheEntry[] = [];
  override put(e: CacheEntry): void {
    if (e.kind === 'kv') this.kv.push(e);
    super.put(e);
  }
}


describe('CacheBlend reuse (random weights, 3 layers, CPU)', () => {
  let remove: () => void;
  let model: VlModel;
  const cat = { name: 'cat.png', bytes: png(224, 168, 1) }; // 16x12 patches -> 8x6 = 48 image tokens
  const dog = { name: 'dog.png', bytes: png(168, 168, 2) }; // 12x12 patches -> 6x6 = 36 image tokens

  const engine = (store: RecordingStore) => {
    const c = model.checkpoint.config.text;
    return new Generator(model, undefined, new ReuseEngine({ fingerprint: model.checkpoint.fingerprint, hiddenSize: c.hiddenSize,
      numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, kvDtype: model.kvDtype }, store));
  };
  interface Run { res: AskResult; logits: Float32Array; plan?: Plan; probe?: Past }
  const ask = async (gen: Generator, req: Partial<AskRequest>): Promise<Run> => {
    const out: Partial<Run> = {};
    const res = await gen.ask({ images: [cat], question: 'What is it?', maxTokens: 3, ignoreEos: true,
      onLogits: (s, l) => { if (s === 0) out.logits = l.slice(); },
      onPlan: ({ plan, probe }) => { out.plan = plan; out.probe = probe; }, ...req });
    return { ...out, res } as Run;
  };
  /** A store holding cat's and dog's KV, each computed alone after the default system prompt. */
  const warmStore = async () => {
    const store = new RecordingStore();
    const gen = engine(store);
    await ask(gen, { mode: 'full', images: [cat] });
    await ask(gen, { mode: 'full', images: [dog], question: 'And this one?' });
    assert.equal(store.kv.length, 2);
    return { store, gen };
  };
  /** Layer-1 V deviation of each row of an image span between the probe's output and a cached entry. */
  const deviations = async (probe: Past, entry: CacheEntry, start: number): Promise<number[]> => {
    const fresh = await toFloat32(probe.values[1]);
    const t = entry.tensors.find((x) => x.name === 'v.1')!;
    const cached = new Float32Array(t.data.slice().buffer);
    const [rows, kv, d] = t.shape;
    const w = kv * d;
    return Array.from({ length: rows }, (_, j) => {
      const at = probe.rows.indexOf(start + j);
      let s = 0;
      for (let i = 0; i < w; i++) s += (fresh[at * w + i] - cached[j * w + i]) ** 2;
      return s;
    });
  };
  /** Image rows a plan recomputes, relative to the image start. */
  const recomputed = (plan: Plan, image: number, start: number, nImg: number) => {
    const reused = new Set(plan.reuse.find((r) => r.image === image)?.rows ?? []);
    return Array.from({ length: nImg }, (_, j) => j).filter((j) => !reused.has(start + j));
  };

  before(async () => {
    const folder = randomCheckpointInTemp('vlcache-blend-', { family: 'qwen2_5_vl', seed: 13, tied: true, layers: 3 });
    remove = folder.remove;
    model = await VlModel.load(folder.ckpt, { device: 'cpu' });
  });
  after(async () => {
    await model.dispose();
    remove();
  });

  it('recomputes exactly ceil(r * nImg) rows of each hit image: those of highest layer-1 V deviation', async () => {
    const { store, gen } = await warmStore();
    // A different system prompt: neither image lies in an exact cached prefix, both hit the image-KV cache.
    const run = await ask(gen, { mode: 'cacheblend', system: 'You are terse.', images: [dog, cat], question: 'Compare them.' });
    assert.ok(run.probe, 'the probe ran');
    assert.equal(run.res.cache.kvHits, 2);
    const [dogEntry, catEntry] = [store.kv[1], store.kv[0]];
    const spans = run.plan!.reuse.map((r) => r.start);
    assert.equal(spans.length, 2);
    let reusedTotal = 0;
    for (const [image, entry, nImg] of [[0, dogEntry, 36], [1, catEntry, 48]] as const) {
      const start = run.plan!.reuse.find((r) => r.image === image)!.start;
      const dev = await deviations(run.probe!, entry, start);
      const k = blendCount(0.15, nImg); // the default ratio of cacheblend
      assert.equal(k, Math.ceil(0.15 * nImg));
      const got = recomputed(run.plan!, image, start, nImg);
      assert.equal(got.length, k, `image ${image}: ${k} rows recomputed`);
      const ranked = dev.map((v, j) => [v, j]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, j]) => j);
      assert.deepEqual(got, ranked.slice(0, k).sort((a, b) => a - b), `image ${image}: the top-${k} deviations`);
      const sorted = [...dev].sort((a, b) => b - a);
      assert.ok(sorted[k - 1] > sorted[k], 'the selection is not decided by a tie');
      assert.notDeepEqual(got, Array.from({ length: k }, (_, j) => j), 'not simply the leading rows');
      reusedTotal += nImg - k;
    }
    const c = run.res.cache;
    assert.equal(c.imageTokensReused, reusedTotal);
    // The probe's rows are counted nowhere: reused + computed rows make up the prompt exactly.
    assert.equal(c.prefixTokensReused + c.imageTokensReused + c.tokensComputed, c.tokensTotal);
    assert.ok(c.probeMs > 0);
  });

  it('equals full at r = 1 (no probe needed) and naive at r = 0', async () => {
    const req = { system: 'You are terse.', images: [dog, cat], question: 'Compare them.' };
    const full = await ask((await warmStore()).gen, { ...req, mode: 'full' });
    const r1 = await ask((await warmStore()).gen, { ...req, mode: 'cacheblend', ratio: 1 });
    assert.equal(r1.res.cache.imageTokensReused, 0);
    assert.equal(r1.res.cache.probeMs, 0);
    assert.ok(maxAbsDiff(full.logits, r1.logits) < 1e-5);
    const naive = await ask((await warmStore()).gen, { ...req, mode: 'naive' });
    const r0 = await ask((await warmStore()).gen, { ...req, mode: 'cacheblend', ratio: 0 });
    assert.equal(r0.res.cache.imageTokensReused, 84);
    assert.equal(maxAbsDiff(naive.logits, r0.logits), 0);
  });

  it('reuses an exact prefix without probing, and recomputes half of each image at r = 0.5', async () => {
    const { gen } = await warmStore();
    const again = await ask(gen, { mode: 'cacheblend', images: [cat] }); // the warm-up prompt itself
    assert.equal(again.probe, undefined);
    assert.equal(again.res.cache.probeMs, 0);
    assert.equal(again.res.cache.tokensComputed, 1);
    const req = { system: 'You are terse.', images: [dog, cat], question: 'Compare them.' };
    const half = await ask((await warmStore()).gen, { ...req, mode: 'cacheblend', ratio: 0.5 });
    assert.equal(half.res.cache.imageTokensReused, 18 + 24);
  });

  it('selects deterministically when the cached KV equals the fresh KV (same prompt, no prefix index)', async () => {
    const { store } = await warmStore();
    // New engines over the same store start with an empty prefix index: cat's prompt is not an exact
    // prefix hit, so cat's entry is reused, and it was computed after exactly this prefix.
    const a = await ask(engine(store), { mode: 'cacheblend', images: [cat] });
    const b = await ask(engine(store), { mode: 'cacheblend', images: [cat] });
    const full = await ask(engine(new RecordingStore()), { mode: 'full', images: [cat] });
    assert.ok(a.probe && b.probe);
    const start = a.plan!.reuse[0].start;
    const dev = await deviations(a.probe!, store.kv[0], start);
    assert.ok(Math.max(...dev) < 1e-10, `deviations ${Math.max(...dev)} are at rounding level`);
    assert.deepEqual(a.plan, b.plan);
    const k = blendCount(0.15, 48);
    assert.deepEqual(recomputed(a.plan!, 0, start, 48), selectByDeviation(dev, k));
    // On the CPU provider the probe reproduces the cached rows bit for bit, so every deviation is 0 and
    // the tie rule picks the leading rows (as a vlcache head would, with ceil instead of floor).
    if (dev.every((v) => v === 0)) assert.deepEqual(recomputed(a.plan!, 0, start, 48), Array.from({ length: k }, (_, j) => j));
    assert.ok(maxAbsDiff(full.logits, a.logits) < 1e-5, 'reusing KV equal to the fresh KV is lossless');
  });
});
