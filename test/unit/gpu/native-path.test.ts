/**
 * The native session path (engine/ort.ts over the C-API seam, what the CUDA provider runs)
 * gives onnxruntime-node's JS path's answers exactly. On the CPU it is forced with
 * VLCACHE_NATIVE_CPU=1 (read at each session's creation), so this file drives here the
 * code a GPU runs: host feeds staged into ONNX Runtime tensors, IO binding, outputs kept
 * "on the device" as held OrtValues (DeviceTensor) and bound as they are to the next run
 * (the sequence's KV between decode steps, the device tier's assembly), downloads by
 * `hostBytes` when the cache stores them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceKv } from '../../../server/src/engine/kv-device';
import { VlModel } from '../../../server/src/engine/model';
import { DeviceTensor } from '../../../server/src/engine/ort';
import { KvArena } from '../../../server/src/engine/kv-arena';
import { NonFiniteError } from '../../../server/src/engine/finite';
import { Sampler } from '../../../server/src/engine/sampler';
import { Generator } from '../../../server/src/ask/generate';
import { MapStore } from '../../../server/src/cache/map-store';
import { ReuseEngine, modelShape } from '../../../server/src/ask/vlcache';
import { randomCheckpointInTemp } from '../../support/random-checkpoint';
import { patternPng } from '../../support/images';

describe('native session path (C API, IO binding, held outputs) vs the JS path (CPU)', () => {
  let remove: () => void;
  let js: VlModel;
  let nat: VlModel;
  const cat = { name: 'cat.png', bytes: patternPng(112, 84, 1) };
  const dog = { name: 'dog.png', bytes: patternPng(84, 84, 2) };

  before(async () => {
    const folder = randomCheckpointInTemp('vlcache-native-', { family: 'qwen2_5_vl', seed: 9, tied: true });
    remove = folder.remove;
    // One intra-op thread on both paths: the same kernels in the same order, so equal means bit-equal.
    delete process.env.VLCACHE_NATIVE_CPU;
    js = await VlModel.load(folder.ckpt, { device: 'cpu' });
    process.env.VLCACHE_NATIVE_CPU = '1';
    nat = await VlModel.load(folder.ckpt, { device: 'cpu' });
    delete process.env.VLCACHE_NATIVE_CPU;
  });
  after(async () => {
    await js?.dispose();
    await nat?.dispose();
    remove?.();
  });

  it('keeps the present KV as held tensors and binds them to the next step', async () => {
    const step = await nat.step({ inputIds: [5, 6, 7], rows: [0, 1, 2], positions: [0, 1, 2, 0, 1, 2, 0, 1, 2], logitRows: [2] });
    assert.ok(step.present.keys.every((k) => k instanceof DeviceTensor), 'present keys are held OrtValues');
    const next = await nat.step({ inputIds: [8], rows: [3], positions: [3, 3, 3], logitRows: [0], past: step.present });
    const ref0 = await js.step({ inputIds: [5, 6, 7], rows: [0, 1, 2], positions: [0, 1, 2, 0, 1, 2, 0, 1, 2], logitRows: [2] });
    assert.ok(!(ref0.present.keys[0] instanceof DeviceTensor), 'the JS path on the CPU returns host tensors');
    const ref = await js.step({ inputIds: [8], rows: [3], positions: [3, 3, 3], logitRows: [0], past: ref0.present });
    assert.ok(next.logits.every(Number.isFinite));
    assert.deepEqual(Array.from(next.logits), Array.from(ref.logits));
    VlModel.release(step.present);
    VlModel.release(next.present);
  });

  it('grows a KV arena of held buffers on the device and decodes as the JS path does', async () => {
    const n = 6;
    const rows = Array.from({ length: n }, (_, r) => r);
    const prompt = { inputIds: rows.map((r) => (r * 7 + 3) % 290), rows, positions: [...rows, ...rows, ...rows], logitRows: [n - 1] };
    const decode = async (model: VlModel) => {
      const first = await model.step(prompt);
      const arena = await KvArena.fromPrefill(model, first.present, { capacity: n + 1, maxCapacity: n + 5 });
      const a0 = await arena.step(5, n, n, { logits: true });
      const a1 = await arena.step(9, n + 1, n + 1, { logits: true }); // full at n + 1 rows: grows to n + 5
      // Then only what picks the token comes back: the top-K (sampling), next_token and the flag (greedy).
      const sampler = new Sampler({ temperature: 1, topP: 0.9, seed: 7 });
      const tokens = [a0.token, a1.token];
      for (let row = n + 2; row < n + 4; row++) tokens.push((await arena.step(tokens.at(-1)!, row, row, { sampler })).token);
      tokens.push((await arena.step(tokens.at(-1)!, n + 4, n + 4)).token);
      const cap = arena.capacity;
      arena.dispose();
      VlModel.release(first.present);
      return { logits: [...a0.logits!, ...a1.logits!], tokens, cap };
    };
    const a = await decode(js);
    process.env.VLCACHE_NATIVE_CPU = '1'; // the arena's sessions are opened here, on the native path
    const b = await decode(nat).finally(() => { delete process.env.VLCACHE_NATIVE_CPU; });
    assert.equal(b.cap, n + 5);
    assert.equal(b.tokens.length, 5);
    assert.ok(b.logits.every(Number.isFinite));
    assert.deepEqual(b.logits, a.logits);
    assert.deepEqual(b.tokens, a.tokens);
  });

  it('flags a NaN on held buffers: the arena step throws the NaN error naming the row', async () => {
    // Token 0's embedding holds a NaN (the prefill's tokens are never 0).
    const folder = randomCheckpointInTemp('vlcache-native-nan-', { family: 'qwen2_5_vl', seed: 9, nanIn: ['model.embed_tokens.weight'] });
    process.env.VLCACHE_NATIVE_CPU = '1';
    const model = await VlModel.load(folder.ckpt, { device: 'cpu' });
    try {
      const n = 4;
      const rows = Array.from({ length: n }, (_, r) => r);
      const first = await model.step({ inputIds: rows.map((r) => r + 1), rows, positions: [...rows, ...rows, ...rows], logitRows: [n - 1] });
      const arena = await KvArena.fromPrefill(model, first.present, { maxCapacity: 16 });
      assert.ok((await model.arenaSession('decode-arena')).native, 'the step runs on held buffers');
      await arena.step(7, n, n);
      await assert.rejects(arena.step(0, n + 1, n + 1), (e: unknown) => e instanceof NonFiniteError &&
        e.index === 0 && Number.isNaN(e.value) && /decode logits at row 5/.test(e.message));
      arena.dispose();
      VlModel.release(first.present);
    } finally {
      delete process.env.VLCACHE_NATIVE_CPU;
      await model.dispose();
      folder.remove();
    }
  });

  for (const [device, arena] of [[false, false], [true, false], [true, true]]) {
    it(`answers a cached-image question like the JS path (vlcache mode, device tier ${device ? 'on' : 'off'}${arena ? ', KV arena decode' : ''})`, async () => {
      const run = async (model: VlModel) => {
        // The arena's fill and in-place decode steps on held tensors (growth: the test below).
        model.kvArena = arena ? { capacity: 4 } : undefined;
        const shape = modelShape(model);
        const reuse = new ReuseEngine(shape, new MapStore(), undefined, device ? new DeviceKv('cpu', shape) : undefined);
        const gen = new Generator(model, undefined, reuse);
        await gen.ask({ images: [cat], question: 'What is it?', maxTokens: 1, mode: 'full' });
        await gen.ask({ images: [dog], question: 'And this?', maxTokens: 1, mode: 'full' });
        let first = new Float32Array();
        const res = await gen.ask({ images: [dog, cat], question: 'Compare.', maxTokens: 5, ignoreEos: true, mode: 'vlcache',
          onLogits: (s, l) => { if (s === 0) first = l.slice(); } });
        return { first, tokens: res.tokenIds };
      };
      const a = await run(js);
      // Sessions made during the ask (the device tier's, the probe's) follow the variable too.
      process.env.VLCACHE_NATIVE_CPU = '1';
      const b = await run(nat).finally(() => { delete process.env.VLCACHE_NATIVE_CPU; });
      assert.ok(a.first.length > 0 && b.first.every(Number.isFinite));
      assert.deepEqual(Array.from(b.first), Array.from(a.first));
      assert.deepEqual(b.tokens, a.tokens);
    });
  }
});
