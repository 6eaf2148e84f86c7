import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ropePositions, selectPositions } from '../../../server/src/engine/positions';

describe('ropePositions', () => {
  it('matches get_rope_index on 5 text rows, a 2x3 image and 3 text rows', () => {
    // vision_start is the 6th text row; the image rows follow it (research/qwen2vl.md 4.3).
    const p = ropePositions(15, [{ row0: 6, h: 2, w: 3 }]);
    const stream = (s: number) => Array.from(p.data.slice(s * 15, (s + 1) * 15));
    assert.deepEqual(stream(0), [0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6, 9, 10, 11]);
    assert.deepEqual(stream(1), [0, 1, 2, 3, 4, 5, 6, 6, 6, 7, 7, 7, 9, 10, 11]);
    assert.deepEqual(stream(2), [0, 1, 2, 3, 4, 5, 6, 7, 8, 6, 7, 8, 9, 10, 11]);
    // max position 11 + 1 - 15 rows = -3 = max(2,3) - 2*3.
    assert.equal(p.ropeDelta, -3);
  });

  it('gives text-only prompts plain positions and no delta', () => {
    const p = ropePositions(4, []);
    assert.deepEqual(Array.from(p.data), [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    assert.equal(p.ropeDelta, 0);
  });

  it('starts a second image after the first one\'s max(h, w) span', () => {
    // text(1) img 2x2 (rows 1-4) text(1) img 1x3 (rows 6-8) text(1)
    const p = ropePositions(10, [{ row0: 1, h: 2, w: 2 }, { row0: 6, h: 1, w: 3 }]);
    assert.deepEqual(Array.from(p.data.slice(0, 10)), [0, 1, 1, 1, 1, 3, 4, 4, 4, 7]);
    assert.equal(p.ropeDelta, -2); // max 7 + 1 - 10 rows = (2 - 4) + (3 - 3)
  });

  it('selects the positions of chosen rows stream by stream', () => {
    const p = ropePositions(15, [{ row0: 6, h: 2, w: 3 }]);
    assert.deepEqual(selectPositions(p, [0, 10, 14]), [0, 6, 11, 0, 7, 11, 0, 7, 11]);
  });
});
