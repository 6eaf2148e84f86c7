import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, argmax, topCandidates, topLogits } from '../../../server/src/engine/sampler';
import { SAMPLE_TOP_K } from '../../../kernels/graphs/decode-arena';

describe('Sampler', () => {
  const logits = Float32Array.from([0.1, 2.5, -1, 2.4, 0]);

  it('is greedy at temperature 0', () => {
    assert.equal(new Sampler().next(logits), 1);
    assert.equal(argmax(logits), 1);
  });

  it('repeats a seeded sequence and only draws from the nucleus', () => {
    const draw = (seed: number) => { const s = new Sampler({ temperature: 1, topP: 0.6, seed }); return Array.from({ length: 50 }, () => s.next(logits)); };
    assert.deepEqual(draw(7), draw(7));
    // p(1) = 0.46, p(3) = 0.42: top-p 0.6 keeps exactly tokens 1 and 3.
    assert.deepEqual([...new Set(draw(7))].sort(), [1, 3]);
  });

  it('takes the argmax\'s first maximum', () => {
    assert.equal(new Sampler().next(Float32Array.from([0, 3, 1, 3])), 1);
  });

  it('samples only among the top-K candidates (K = SAMPLE_TOP_K), however hot', () => {
    const flat = Float32Array.from({ length: 200 }, (_, i) => -i * 1e-3); // ids 0..63 are the largest
    const s = new Sampler({ temperature: 100, seed: 1 });
    const drawn = Array.from({ length: 2000 }, () => s.next(flat));
    assert.ok(drawn.every((t) => t < SAMPLE_TOP_K));
    assert.equal(new Set(drawn).size, SAMPLE_TOP_K, 'every candidate is drawn');
  });

  it('picks from candidates the token it picks from the full row (same seed)', () => {
    const row = Float32Array.from({ length: 500 }, (_, i) => Math.sin(i * 7.3) * 4);
    const full = new Sampler({ temperature: 0.9, topP: 0.8, seed: 9 });
    const cand = new Sampler({ temperature: 0.9, topP: 0.8, seed: 9 });
    const { ids, values } = topCandidates(row, SAMPLE_TOP_K);
    for (let i = 0; i < 100; i++) assert.equal(cand.pick(ids, values), full.next(row));
  });

  it('orders candidates largest first, equal logits by id, the lower ids kept at the cut', () => {
    const { ids, values } = topCandidates(Float32Array.from([1, 3, 3, 2, 3, 5]), 3);
    assert.deepEqual(Array.from(ids), [5, 1, 2]);
    assert.deepEqual(Array.from(values), [5, 3, 3]);
    assert.deepEqual(Array.from(topCandidates(Float32Array.from([2, 1]), 64).ids), [0, 1]);
  });

  it('lists the top-k logits largest first', () => {
    assert.deepEqual(topLogits(logits, 3).map(([i]) => i), [1, 3, 0]);
  });
});
