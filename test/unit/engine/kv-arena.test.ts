/**
 * The KV arena decode path (engine/kv-arena.ts, kernels/graphs/decode-arena.ts) against
 * today's step-graph decode, on random checkpoints of both families and the real CPU
 * provider: the same greedy tokens and logits within 1e-4 after a plain prompt, an image
 * prompt and a VLCache reuse prompt; growth when full, a clear error at the limit, and a
 * failed or cancelled step that leaves the arena as it was. Sampling on the device: the step's
 * top-K candidates give the token the host Sampler picks from the full row (same seed), ties
 * broken as the host breaks them (a checkpoint whose logits come in equal pairs), and a NaN in a
 * weight is the NaN error at the arena step.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ArenaFullError, KvArena } from '../../../server/src/engine/kv-arena';
import { NonFiniteError } from '../../../server/src/engine/finite';
import { Sampler, SamplingOptions, argmax } from '../../../server/src/engine/sampler';
import { VlModel } from '../../../server/src/engine/model';
import { AskRequest, AskResult, Generator } from '../../../server/src/ask/generate';
import { MapStore } from '../../../server/src/cache/map-store';
import { ReuseEngine, modelShape } from '../../../server/src/ask/vlcache';
import { maxAbsDiff, patternPng } from '../../support/images';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';

const TOKENS = 14;
const cat = { name: 'cat.png', bytes: patternPng(112, 84, 1) }; // 12 image tokens
const dog = { name: 'dog.png', bytes: patternPng(84, 84, 2) };

for (const family of ['qwen2_vl', 'qwen2_5_vl'] as const) {
  describe(`KV arena decode (${family}, random weights, CPU)`, () => {
    let model: VlModel;
    let remove: () => void;

    /** Runs `asks` in order on a fresh generator (a fresh cache when `cached`); returns the last one's tokens and logits. */
    const run = async (arena: boolean, asks: Partial<AskRequest>[], cached = false) => {
      // A small initial capacity so that filling and decoding both grow the arena.
      model.kvArena = arena ? { capacity: 8 } : undefined;
      const gen = new Generator(model, undefined, cached ? new ReuseEngine(modelShape(model), new MapStore()) : undefined);
      let res: AskResult | undefined;
      let logits: Float32Array[] = [];
      // Counts the arena's decode runs (the real run, only counted), to show which path decoded.
      const real = model.runArenaGraph.bind(model);
      let decodeRuns = 0;
      model.runArenaGraph = (graph, feeds, fetches) => { if (graph === 'decode-arena') decodeRuns++; return real(graph, feeds, fetches); };
      let tokens = 0;
      for (const req of asks) {
        logits = [];
        res = await gen.ask({ images: [], question: 'Say something.', maxTokens: TOKENS, ignoreEos: true,
          onLogits: (_, l) => logits.push(l.slice()), ...req });
        tokens += Math.max(0, res.tokenIds.length - 1);
      }
      model.kvArena = undefined;
      delete (model as Partial<VlModel>).runArenaGraph;
      // Every token after the first came from the arena (arena on) or from none of its runs (off).
      assert.equal(decodeRuns, arena ? tokens : 0);
      return { res: res!, logits };
    };
    const sameDecode = (a: Awaited<ReturnType<typeof run>>, b: Awaited<ReturnType<typeof run>>) => {
      assert.equal(a.res.tokenIds.length, TOKENS);
      assert.deepEqual(a.res.tokenIds, b.res.tokenIds);
      assert.equal(a.logits.length, b.logits.length);
      const worst = Math.max(...a.logits.map((l, i) => maxAbsDiff(l, b.logits[i])));
      assert.ok(worst < 1e-4, `logits differ by ${worst}`);
    };

    before(async () => {
      const folder = randomCheckpointInTemp('vlcache-arena-', { family, seed: 21 });
      remove = folder.remove;
      model = await VlModel.load(folder.ckpt, { device: 'cpu' });
    });
    after(async () => {
      await model.dispose();
      remove();
    });

    it('decodes a plain prompt to the same greedy tokens and logits as the step graph', async () => {
      sameDecode(await run(true, [{}]), await run(false, [{}]));
    });

    it('decodes after an image prompt (image rows rotated at their 3-stream positions)', async () => {
      const req = { images: [cat, dog], question: 'Compare them.' };
      sameDecode(await run(true, [req]), await run(false, [req]));
    });

    it('decodes after a VLCache reuse prompt (reused image rows given to the prefill)', async () => {
      const asks: Partial<AskRequest>[] = [
        { mode: 'full', images: [cat] },
        { mode: 'full', images: [dog], question: 'And this one?' },
        { mode: 'vlcache', ratio: 0.05, images: [dog, cat] },
      ];
      const withArena = await run(true, asks, true);
      assert.equal(withArena.res.cache.kvHits, 1);
      assert.ok(withArena.res.cache.imageTokensReused > 0);
      sameDecode(withArena, await run(false, asks, true));
    });

    it('stops between steps when cancelled, with the tokens of the uncancelled run so far', async () => {
      const controller = new AbortController();
      let seen = 0;
      const cancelled = await run(true, [{ maxTokens: 50, signal: controller.signal, onToken: () => { if (++seen === 4) controller.abort(); } }]);
      assert.equal(cancelled.res.stopReason, 'cancelled');
      const full = await run(false, [{}]);
      assert.deepEqual(cancelled.res.tokenIds, full.res.tokenIds.slice(0, 4));
    });

    it('samples the step-graph path\'s tokens for a fixed seed, reading back only the top-K', async () => {
      const sampling = { temperature: 1, topP: 0.9, seed: 11 };
      // onLogits unset: the arena step reads back its candidates, never the logits row.
      const req = { images: [cat], sampling, onLogits: undefined };
      const arena = await run(true, [req]), step = await run(false, [req]);
      assert.equal(arena.res.tokenIds.length, TOKENS);
      assert.deepEqual(arena.res.tokenIds, step.res.tokenIds);
      const greedy = await run(true, [{ images: [cat] }]);
      assert.notDeepEqual(arena.res.tokenIds, greedy.res.tokenIds, 'the sampled answer is not the greedy one');
    });

    it('picks from the device\'s candidates the token the host Sampler picks from the full row', async () => {
      await sameTokensAsHost(model, { temperature: 1.5, topP: 0.95, seed: 3 });
      await sameTokensAsHost(model, { temperature: 0.7, seed: 4 });
      await sameTokensAsHost(model, {});
    });

    it('grows when full, errors clearly at its limit, and a failed step changes nothing', async () => {
      const n = 6;
      const first = await prefillOn(model, n);
      const arena = await KvArena.fromPrefill(model, first.present, { capacity: n + 1, maxCapacity: n + 3 });
      assert.equal(arena.capacity, n + 1);
      const a0 = await arena.step(5, n, n, { logits: true });
      const before = [await arena.keysOf(0), await arena.valuesOf(1)];
      // An out-of-vocabulary id makes the run fail: nothing advances, rows [0, length) are untouched.
      await assert.rejects(arena.step(1 << 20, n + 1, n + 1));
      assert.equal(arena.length, n + 1);
      assert.deepEqual([await arena.keysOf(0), await arena.valuesOf(1)], before);
      const a1 = await arena.step(9, n + 1, n + 1, { logits: true }); // grows n+1 -> n+3 (doubling capped at the limit)
      assert.equal(arena.capacity, n + 3);
      // The same two steps through the step graph.
      const s0 = await model.step({ inputIds: [5], rows: [n], positions: [n, n, n], past: first.present, logitRows: [0] });
      const s1 = await model.step({ inputIds: [9], rows: [n + 1], positions: [n + 1, n + 1, n + 1], past: s0.present, logitRows: [0] });
      assert.ok(maxAbsDiff(a0.logits!, s0.logits) < 1e-4 && maxAbsDiff(a1.logits!, s1.logits) < 1e-4);
      assert.equal(a1.token, s1.logits.indexOf(Math.max(...s1.logits)));
      await arena.step(2, n + 2, n + 2);
      await assert.rejects(arena.step(2, n + 3, n + 3), (e: Error) => e instanceof ArenaFullError && /cannot hold 10 rows: its limit is 9/.test(e.message));
      assert.equal(arena.length, n + 3);
      await assert.rejects(arena.step(2, n + 1, n + 1), /holds 9 rows; cannot decode row 7/);
    });
  });
}

/** A text prefill of `n` rows through the step graph (tokens (7r + 3) mod 290, never 0): its logits and present K/V. */
function prefillOn(model: VlModel, n: number) {
  const rows = Array.from({ length: n }, (_, r) => r);
  return model.step({ inputIds: rows.map((r) => (r * 7 + 3) % 290), rows, positions: [...rows, ...rows, ...rows], logitRows: [n - 1] });
}

/**
 * 24 arena steps, each feeding back its token: the token the step picked (on the device's argmax
 * or top-K) equals what a host Sampler of the same seed picks from the same step's full logits row.
 * Returns the tokens.
 */
async function sameTokensAsHost(model: VlModel, sampling: SamplingOptions): Promise<number[]> {
  const n = 6;
  const first = await prefillOn(model, n);
  const arena = await KvArena.fromPrefill(model, first.present, { capacity: 8, maxCapacity: 64 });
  const device = new Sampler(sampling), host = new Sampler(sampling);
  const tokens: number[] = [];
  let id = host.next(first.logits);
  device.next(first.logits); // both samplers at the same draw
  try {
    for (let row = n; row < n + 24; row++) {
      const s = await arena.step(id, row, row, { sampler: device, logits: true });
      assert.equal(s.token, host.next(s.logits!), `row ${row}`);
      if (device.greedy) assert.equal(s.token, argmax(s.logits!));
      tokens.push((id = s.token));
    }
  } finally {
    arena.dispose();
  }
  return tokens;
}

describe('KV arena decode: ties broken as the host breaks them (logits in equal pairs, CPU)', () => {
  let model: VlModel;
  let remove: () => void;
  before(async () => {
    // lm_head rows 2k and 2k+1 are equal: every logit ties with its pair, so the argmax and the
    // top-K order depend on the tie-break (the first maximum; equal logits in id order).
    const folder = randomCheckpointInTemp('vlcache-arena-ties-', { family: 'qwen2_5_vl', seed: 5, pairedHead: true });
    remove = folder.remove;
    model = await VlModel.load(folder.ckpt, { device: 'cpu' });
  });
  after(async () => {
    await model.dispose();
    remove();
  });

  it('greedy: the step graph\'s tokens, each the first of its tied pair', async () => {
    const ask = async (arena: boolean) => {
      model.kvArena = arena ? { capacity: 8 } : undefined;
      const res = await new Generator(model).ask({ images: [], question: 'Ties?', maxTokens: TOKENS, ignoreEos: true });
      model.kvArena = undefined;
      return res.tokenIds;
    };
    const l = (await prefillOn(model, 4)).logits;
    assert.ok(l.every((x, i) => x === l[i ^ 1]), 'the logits come in equal pairs');
    const withArena = await ask(true);
    assert.deepEqual(withArena, await ask(false));
    assert.ok(withArena.every((t) => t % 2 === 0), `tokens ${withArena}`);
    const steps = await sameTokensAsHost(model, {});
    assert.ok(steps.every((t) => t % 2 === 0), `tokens ${steps}`);
  });

  it('sampling: the device\'s candidates in the host\'s order (both tokens of a pair are drawn)', async () => {
    const tokens = [
      ...await sameTokensAsHost(model, { temperature: 2, seed: 1 }),
      ...await sameTokensAsHost(model, { temperature: 2, topP: 0.8, seed: 2 }),
    ];
    // A reversed order within a pair would swap its ids: the test sees both parities.
    assert.ok(tokens.some((t) => t % 2 === 0) && tokens.some((t) => t % 2 === 1), `tokens ${tokens}`);
  });
});

it('an infinite logit is the same error (the device flag counts +-Infinity too)', async () => {
  // Two checkpoints equal but for lm_head[0][0] = +Infinity: the finite one prefills (lm_head makes no
  // K/V), the other decodes through the arena, where logit 0 = h_0 * Infinity.
  const opts = { family: 'qwen2_5_vl', seed: 4 } as const;
  const finite = randomCheckpointInTemp('vlcache-arena-fin-', opts);
  const infinite = randomCheckpointInTemp('vlcache-arena-inf-', { ...opts, infIn: ['lm_head.weight'] });
  const a = await VlModel.load(finite.ckpt, { device: 'cpu' });
  const b = await VlModel.load(infinite.ckpt, { device: 'cpu' });
  try {
    const first = await prefillOn(a, 5);
    const arena = await KvArena.fromPrefill(b, first.present, { maxCapacity: 16 });
    await assert.rejects(arena.step(3, 5, 5), (e: unknown) => e instanceof NonFiniteError &&
      e.index === 0 && Math.abs(e.value) === Infinity && /decode logits at row 5/.test(e.message));
    arena.dispose();
  } finally {
    await a.dispose();
    await b.dispose();
    finite.remove();
    infinite.remove();
  }
});

for (const family of ['qwen2_vl', 'qwen2_5_vl'] as const) {
  it(`a NaN in a weight is the NaN error at the arena step, naming the stage and row (${family}, CPU)`, async () => {
    // Token 0's embedding holds a NaN: the prefill (no token 0) is finite, the step on token 0 is not.
    const folder = randomCheckpointInTemp('vlcache-arena-nan-', { family, seed: 2, nanIn: ['model.embed_tokens.weight'] });
    const model = await VlModel.load(folder.ckpt, { device: 'cpu' });
    try {
      const n = 5;
      for (const sampler of [undefined, new Sampler({ temperature: 1, seed: 1 })]) {
        const first = await prefillOn(model, n);
        assert.ok(first.logits.every(Number.isFinite));
        const arena = await KvArena.fromPrefill(model, first.present, { maxCapacity: 16 });
        await arena.step(3, n, n, { sampler }); // a finite step first
        await assert.rejects(arena.step(0, n + 1, n + 1, { sampler }), (e: unknown) => e instanceof NonFiniteError &&
          e.stage === 'language model' && Number.isNaN(e.value) && e.index === 0 && /decode logits at row 6/.test(e.message));
        arena.dispose();
      }
    } finally {
      await model.dispose();
      folder.remove();
    }
  });
}
