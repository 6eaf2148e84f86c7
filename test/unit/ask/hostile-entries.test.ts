/**
 * Well-formed hostile cache entries (issue 9 item 7): files whose checksums verify but whose contents do not fit
 * the model — fewer layers, a dropped or renamed tensor, halved shapes, another row count, a wrong grid. Each is
 * treated as a miss (ask/entry-check.ts): the ask gives the clean answer, and the recomputed entry replaces the
 * bad one, so the next ask is a cache hit again. Before, every later ask of that image failed until `cache clear`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TieredStore } from '../../../server/src/cache/store';
import { decodeEntry, decodeHeader, encodeEntry } from '../../../server/src/cache/disk-format';
import type { CacheEntry, EntryTensor } from '../../../server/src/cache/entry';
import { VlModel } from '../../../server/src/engine/model';
import { AskRequest, AskResult, Generator } from '../../../server/src/ask/generate';
import { ReuseEngine, modelShape } from '../../../server/src/ask/vlcache';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';
import { patternPng } from '../../support/images';

type Mutation = (e: CacheEntry) => CacheEntry;
const withTensors = (e: CacheEntry, tensors: EntryTensor[], meta = e.meta): CacheEntry => ({ ...e, meta, tensors });
const halve = (t: EntryTensor, axis: number): EntryTensor => {
  const shape = t.shape.map((d, i) => (i === axis ? d / 2 : d));
  return { ...t, shape, data: t.data.slice(0, t.data.byteLength / 2) };
};

const KV_MUTATIONS: [string, Mutation][] = [
  ['one layer fewer', (e) => {
    const L = Number(e.meta.layers) - 1;
    return withTensors(e, e.tensors.filter((t) => !t.name.endsWith(`.${L}`)), { ...e.meta, layers: L });
  }],
  ['a dropped tensor', (e) => withTensors(e, e.tensors.filter((t) => t.name !== 'v.0'))],
  ['a renamed tensor', (e) => withTensors(e, e.tensors.map((t) => (t.name === 'k.1' ? { ...t, name: 'q.1' } : t)))],
  ['halved KV heads', (e) => withTensors(e, e.tensors.map((t) => halve(t, 1)))],
  ['halved rows', (e) => withTensors(e, e.tensors.map((t) => halve(t, 0)))],
  ['halved rows in one layer', (e) => withTensors(e, e.tensors.map((t) => (t.name === 'k.1' ? halve(t, 0) : t)))],
];
const ENCODER_MUTATIONS: [string, Mutation][] = [
  ['halved hidden size', (e) => withTensors(e, [halve(e.tensors[0], 1)])],
  ['halved rows', (e) => withTensors(e, [halve(e.tensors[0], 0)])],
  ['a renamed tensor', (e) => withTensors(e, [{ ...e.tensors[0], name: 'pixels' }])],
  ['a grid that does not match the rows', (e) => withTensors(e, [...e.tensors], { ...e.meta, grid: [1, 2, 2] })],
];

describe('hostile but well-formed cache entries (random weights, CPU)', () => {
  let remove: () => void;
  let model: VlModel;
  const dirs: string[] = [];
  const cat = { name: 'cat.png', bytes: patternPng(112, 84, 1) };

  const store = (dir: string) => new TieredStore({ dir, ramBytes: 2 ** 30, diskBytes: 2 ** 30,
    modelFingerprint: model.checkpoint.fingerprint, log: () => {} });
  const ask = (reuse: ReuseEngine, req: Partial<AskRequest> = {}): Promise<AskResult> =>
    new Generator(model, undefined, reuse).ask({ images: [cat], question: 'What is it?', maxTokens: 4, ignoreEos: true, mode: 'vlcache', ...req });
  const engine = (dir: string) => new ReuseEngine(modelShape(model), store(dir), 0);

  /** A cache directory holding cat's encoder and KV entries, with the entry of `kind` rewritten by `mutate`. */
  const spoiled = async (kind: 'kv' | 'encoder', mutate: Mutation): Promise<string> => {
    const dir = mkdtempSync(join(tmpdir(), 'vlcache-hostile-'));
    dirs.push(dir);
    const reuse = engine(dir);
    await ask(reuse, { mode: 'full', maxTokens: 1 });
    await (reuse.store as TieredStore).close();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.vlc'))) {
      const bytes = readFileSync(join(dir, f));
      const h = decodeHeader(bytes);
      if (!h.ok || h.header.kind !== kind) continue;
      const r = decodeEntry(bytes, { key: h.header.key });
      assert.ok(r.ok);
      writeFileSync(join(dir, f), encodeEntry(mutate(r.entry))); // a valid file: checksums recomputed
    }
    return dir;
  };

  before(async () => {
    const folder = randomCheckpointInTemp('vlcache-hostile-', { family: 'qwen2_5_vl', seed: 9, tied: true });
    remove = folder.remove;
    model = await VlModel.load(folder.ckpt, { device: 'cpu' });
  });
  after(async () => {
    await model.dispose();
    remove();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  for (const [kind, mutations] of [['kv', KV_MUTATIONS], ['encoder', ENCODER_MUTATIONS]] as const) {
    for (const [what, mutate] of mutations) {
      it(`${kind} entry with ${what}: a miss, the clean answer, then a hit on the recomputed entry`, async () => {
        const clean = await ask(engine(mkdtempSync(join(tmpdir(), 'vlcache-hostile-clean-'))), { mode: 'full' });
        const dir = await spoiled(kind, mutate);
        const firstEngine = engine(dir);
        const first = await ask(firstEngine);
        assert.deepEqual(first.tokenIds, clean.tokenIds);
        if (kind === 'kv') assert.equal(first.cache.kvHits, 0);
        else assert.equal(first.cache.encoderHits, 0);
        await (firstEngine.store as TieredStore).close(); // the recomputed entries are on disk
        const reuse = engine(dir);
        const again = await ask(reuse, { mode: 'full' });
        assert.deepEqual(again.tokenIds, clean.tokenIds);
        assert.equal(again.cache.encoderHits, 1, 'the recomputed encoder entry replaced the bad one');
      });
    }
  }
});
