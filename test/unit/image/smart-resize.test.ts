import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ImageError } from '../../../server/src/engine/image/errors';
import { planSmartResize, roundHalfEven, smartResize } from '../../../server/src/engine/image/smart-resize';

describe('smartResize', () => {
  it('matches transformers 5.17 on the worked examples', () => {
    // Expected values computed with transformers' smart_resize (factor 28, min 56*56, max 28*28*1280).
    assert.deepEqual(smartResize(150, 100), [140, 112]);
    assert.deepEqual(smartResize(10, 10), [56, 56]); // Rounds to 0x0, then the min_pixels branch.
    assert.deepEqual(smartResize(4000, 3000), [1148, 840]); // max_pixels branch.
    assert.deepEqual(smartResize(1000, 20), [1008, 28]);
    assert.deepEqual(smartResize(1, 150), [28, 700]);
    assert.deepEqual(smartResize(2000, 2000, 28, 3136, 1_000_000), [980, 980]);
  });

  it('rounds halves to even like Python, not up like Math.round', () => {
    // 70 / 28 = 2.5 -> 2 (Math.round would give 3, i.e. 84 px); 98 / 28 = 3.5 -> 4.
    assert.deepEqual(smartResize(70, 200), [56, 196]);
    assert.deepEqual(smartResize(98, 98), [112, 112]);
    assert.deepEqual(smartResize(126, 70), [112, 56]); // 4.5 -> 4 and 2.5 -> 2.
  });

  it('keeps at least one factor per side when max_pixels shrinks a thin image', () => {
    // 20 x 4000 over a 50000-pixel budget: floor(20 / 1.26 / 28) = 0 is clamped up to 28.
    assert.deepEqual(smartResize(20, 4000, 28, 3136, 50_000), [28, 3136]);
  });

  it('says which rule decided the size', () => {
    assert.equal(planSmartResize(150, 100, 28, 3136, 12_845_056).rule, 'rounded');
    assert.equal(planSmartResize(4000, 3000, 28, 3136, 1_003_520).rule, 'max-pixels');
    assert.equal(planSmartResize(10, 10, 28, 3136, 12_845_056).rule, 'min-pixels');
  });

  it('rejects aspect ratios above 200:1 and accepts exactly 200:1', () => {
    assert.throws(() => smartResize(1, 300), (e: unknown) => e instanceof ImageError && e.code === 'aspect-ratio');
    assert.throws(() => smartResize(402, 2), (e: unknown) => e instanceof ImageError && e.code === 'aspect-ratio');
    assert.deepEqual(smartResize(1, 200), [28, 812]);
  });

  it('rejects a zero-size image', () => {
    assert.throws(() => smartResize(0, 10), (e: unknown) => e instanceof ImageError && e.code === 'empty');
  });
});

describe('roundHalfEven', () => {
  it('rounds like Python 3 round()', () => {
    const cases: [number, number][] = [[0.5, 0], [1.5, 2], [2.5, 2], [3.5, 4], [-0.5, 0], [-1.5, -2], [-2.5, -2], [2.4999, 2], [2.5001, 3], [7, 7]];
    for (const [x, expected] of cases) assert.equal(roundHalfEven(x), expected, `round(${x})`);
  });
});
