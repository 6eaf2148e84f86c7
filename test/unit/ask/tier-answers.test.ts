/**
 * Answers never depend on which tier served a cache entry (DESIGN.md 4, invariant 4; issue 9 item 1).
 *
 * Every mode asks about [dog, cat] after both images were cached alone. The entries come from:
 *   - RAM: the very objects the first requests put (the reference),
 *   - disk: a new store over the same directory, as after a restart (the encoder entry, the KV entry, or both),
 *   - device: the device tier of image KV (CPU provider: the same graphs a GPU runs),
 * and with every KV file deleted, only the encoder entries survive (a kill between the two writes, a full disk, a
 * damaged KV file): then every mode computes every row and must give the clean run's answer exactly.
 *
 * The bug this pins: encoder embeddings read back from disk were a view of the whole file (header included), so
 * every `full` and `prefix` re-ask after a restart answered garbage.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TieredStore } from '../../../server/src/cache/store';
import { decodeHeader } from '../../../server/src/cache/disk-format';
import { readFileSync } from 'node:fs';
import { DeviceKv } from '../../../server/src/engine/kv-device';
import { VlModel } from '../../../server/src/engine/model';
import { AskRequest, AskResult, Generator } from '../../../server/src/ask/generate';
import { MODES, Mode } from '../../../server/src/planner/plan';
import { ReuseEngine, modelShape } from '../../../server/src/ask/vlcache';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';
import { maxAbsDiff, patternPng } from '../../support/images';

interface Answer { res: AskResult; first: Float32Array }

describe('answers served from every cache tier, in every mode (random weights, CPU)', () => {
  let remove: () => void;
  let model: VlModel;
  const dirs: string[] = [];
  const cat = { name: 'cat.png', bytes: patternPng(112, 84, 1) }; // 12 image tokens
  const dog = { name: 'dog.png', bytes: patternPng(84, 84, 2) }; // 9 image tokens

  const newStore = (dir?: string) => new TieredStore({ dir, ramBytes: 2 ** 30, diskBytes: 2 ** 30,
    modelFingerprint: model.checkpoint.fingerprint, log: () => {} });
  const ask = async (reuse: ReuseEngine, req: Partial<AskRequest>): Promise<Answer> => {
    let first = new Float32Array();
    const res = await new Generator(model, undefined, reuse).ask({ images: [dog, cat], question: 'Compare them.',
      maxTokens: 4, ignoreEos: true, onLogits: (s, l) => { if (s === 0) first = l.slice(); }, ...req });
    return { res, first };
  };
  /**
   * A reuse engine without a prefix cache (budget 0), so that every engine sees the same entries and nothing else:
   * the exact-prefix cache lives in one engine's RAM and would otherwise make the reference differ from a restart.
   */
  const engine = (store?: TieredStore, deviceKv?: DeviceKv) => new ReuseEngine(modelShape(model), store, 0, deviceKv);
  /** Caches cat's and dog's encoder output and KV (each computed alone) through `reuse`, into its store. */
  const populate = async (reuse: ReuseEngine) => {
    await ask(reuse, { mode: 'full', images: [cat], question: 'What is it?', maxTokens: 1 });
    await ask(reuse, { mode: 'full', images: [dog], question: 'And this?', maxTokens: 1 });
    await (reuse.store as TieredStore).close(); // every queued disk write is on disk
  };
  /** A populated cache directory; `dropKv` deletes its KV files, leaving the encoder entries. */
  const populatedDir = async (dropKv: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), 'vlcache-tiers-'));
    dirs.push(dir);
    await populate(engine(newStore(dir)));
    if (dropKv) {
      for (const f of readdirSync(dir).filter((n) => n.endsWith('.vlc'))) {
        const h = decodeHeader(readFileSync(join(dir, f)));
        if (h.ok && h.header.kind === 'kv') unlinkSync(join(dir, f));
      }
    }
    return dir;
  };
  const same = (a: Answer, b: Answer, what: string) => {
    assert.ok(a.first.length > 0 && a.first.every(Number.isFinite), `${what}: finite first-token logits`);
    assert.ok(maxAbsDiff(a.first, b.first) < 1e-5, `${what}: first-token logits differ by ${maxAbsDiff(a.first, b.first)}`);
    assert.deepEqual(a.res.tokenIds, b.res.tokenIds, `${what}: tokens`);
  };

  before(async () => {
    const folder = randomCheckpointInTemp('vlcache-tiers-', { family: 'qwen2_5_vl', seed: 9, tied: true });
    remove = folder.remove;
    model = await VlModel.load(folder.ckpt, { device: 'cpu' });
  });
  after(async () => {
    await model.dispose();
    remove();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  for (const mode of MODES) {
    it(`${mode}: RAM, disk and device tiers give one answer; encoder entries alone give the clean answer`, async () => {
      const clean = await ask(engine(), { mode });

      // RAM: a store that holds the objects the populating requests put.
      const ramEngine = engine(newStore());
      await populate(ramEngine);
      const ram = await ask(ramEngine, { mode });
      assert.ok(ram.res.cache.encoderHits === 2 || ram.res.cache.kvHits > 0, `${mode}: served from RAM`);
      assert.ok(!ram.res.cache.tier.some((t) => t.endsWith(':disk')));
      if (mode === 'full' || mode === 'prefix') same(ram, clean, `${mode} RAM vs clean`);

      // Disk: a new store over the directory, as after a restart.
      const disk = await ask(engine(newStore(await populatedDir(false))), { mode });
      assert.ok(disk.res.cache.tier.includes('encoder:disk') || disk.res.cache.tier.includes('kv:disk'),
        `${mode}: served from disk (${disk.res.cache.tier.join()})`);
      same(disk, ram, `${mode} disk vs RAM`);

      // Device: the KV rows come from the device tier the populating requests filled.
      const deviceKv = new DeviceKv('cpu', modelShape(model));
      try {
        const devEngine = engine(newStore(), deviceKv);
        await populate(devEngine);
        const dev = await ask(devEngine, { mode });
        if (ram.res.cache.kvHits > 0) assert.ok(dev.res.cache.tier.includes('kv:device'), `${mode}: ${dev.res.cache.tier.join()}`);
        same(dev, ram, `${mode} device vs RAM`);
      } finally {
        await deviceKv.dispose();
      }

      // Encoder entries alone (every KV file gone): nothing to reuse but embeddings, so exactly the clean answer.
      const encOnly = await ask(engine(newStore(await populatedDir(true))), { mode });
      assert.equal(encOnly.res.cache.encoderHits, 2);
      assert.equal(encOnly.res.cache.kvHits, 0);
      assert.deepEqual(encOnly.res.cache.tier.filter((t) => t.startsWith('encoder')), ['encoder:disk', 'encoder:disk']);
      same(encOnly, clean, `${mode} encoder-from-disk vs clean`);
    });
  }
});
