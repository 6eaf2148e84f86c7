import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, argmax, topLogits } from '../../../server/src/engine/sampler';

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

  it('lists the top-k logits largest first', () => {
    assert.deepEqual(topLogits(logits, 3).map(([i]) => i), [1, 3, 0]);
  });
});
