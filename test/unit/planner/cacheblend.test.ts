/**
 * CacheBlend's pure selection (server/src/planner/cacheblend.ts): how many rows,
 * the per-row V deviation, and the top-k choice with its tie and NaN rules.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { blendCount, rowDeviations, selectByDeviation } from '../../../server/src/planner/cacheblend';

describe('blendCount', () => {
  it('is ceil(r * n), capped at n, and 0 at r = 0', () => {
    assert.equal(blendCount(0.15, 12), 2); // 1.8
    assert.equal(blendCount(0.15, 48), 8); // 7.2
    assert.equal(blendCount(0.15, 2304), 346); // 345.6
    assert.equal(blendCount(0.01, 5), 1);
    assert.equal(blendCount(1, 40), 40);
    assert.equal(blendCount(1.5, 40), 40);
    assert.equal(blendCount(0, 40), 0);
    assert.equal(blendCount(0.5, 0), 0);
  });

  it('does not round an exact product up through floating-point error', () => {
    assert.ok(0.07 * 100 > 7); // 7.000000000000001
    assert.equal(blendCount(0.07, 100), 7);
    assert.equal(blendCount(0.55, 200), 110); // 110.00000000000001
    assert.equal(blendCount(0.35, 180), 63); // 62.99999999999999
  });
});

describe('rowDeviations', () => {
  it('sums squared differences over a row, pairing rows of two differently ordered arrays', () => {
    // a: 3 rows of width 2; b: 2 rows of width 2.
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const b = Float32Array.from([5, 5, 1, 0]);
    const d = rowDeviations(a, [2, 0], b, [0, 1], 2);
    assert.deepEqual([...d], [0 + 1, 0 + 4]); // (5-5)^2 + (6-5)^2; (1-1)^2 + (2-0)^2
  });

  it('rejects rows outside either array and mismatched row lists', () => {
    const a = new Float32Array(4), b = new Float32Array(4);
    assert.throws(() => rowDeviations(a, [2], b, [0], 2), /out of range/);
    assert.throws(() => rowDeviations(a, [0, 1], b, [0], 2), /rows against/);
  });
});

describe('selectByDeviation', () => {
  it('picks the highest deviations, returned ascending', () => {
    assert.deepEqual(selectByDeviation([0.1, 5, 0.3, 7, 2], 2), [1, 3]);
    assert.deepEqual(selectByDeviation([0.1, 5, 0.3, 7, 2], 3), [1, 3, 4]);
  });

  it('breaks ties by the lower row index, so equal deviations select the leading rows', () => {
    assert.deepEqual(selectByDeviation([0, 0, 0, 0, 0], 2), [0, 1]);
    assert.deepEqual(selectByDeviation([1, 3, 3, 3, 0], 2), [1, 2]);
    assert.deepEqual(selectByDeviation([3, 1, 3, 1], 3), [0, 1, 2]);
  });

  it('ranks NaN first (a row whose KV cannot be compared is recomputed)', () => {
    assert.deepEqual(selectByDeviation([1, NaN, 9, NaN], 2), [1, 3]);
    assert.deepEqual(selectByDeviation([1, NaN, 9, Infinity], 2), [1, 3]);
  });

  it('clamps the count to [0, n]', () => {
    assert.deepEqual(selectByDeviation([1, 2], 0), []);
    assert.deepEqual(selectByDeviation([1, 2], 5), [0, 1]);
    assert.deepEqual(selectByDeviation([], 3), []);
  });
});
