import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { visionRotaryPositions } from '../../../server/src/engine/image/rotary-positions';

describe('visionRotaryPositions', () => {
  it('walks 2x2 blocks row-major, and the patches of each block row-major', () => {
    // Grid 4 x 6: the first block is (0,0) (0,1) (1,0) (1,1), the second (0,2) (0,3) (1,2) (1,3).
    const { hpos, wpos } = visionRotaryPositions(4, 6, 2);
    assert.deepEqual([...hpos.subarray(0, 8)], [0, 0, 1, 1, 0, 0, 1, 1]);
    assert.deepEqual([...wpos.subarray(0, 8)], [0, 1, 0, 1, 2, 3, 2, 3]);
    assert.deepEqual([hpos[12], wpos[12]], [2, 0]); // First patch of the second block row.
    assert.deepEqual([hpos[23], wpos[23]], [3, 5]);
  });

  it('matches the closed form of the pixel_values row order', () => {
    const [gh, gw, m] = [10, 8, 2];
    const { hpos, wpos } = visionRotaryPositions(gh, gw, m);
    for (let r = 0; r < gh * gw; r++) {
      const [iw, ih] = [r % m, Math.floor(r / m) % m];
      const [bw, bh] = [Math.floor(r / (m * m)) % (gw / m), Math.floor(r / (m * m * (gw / m)))];
      assert.deepEqual([hpos[r], wpos[r]], [bh * m + ih, bw * m + iw], `row ${r}`);
    }
  });

  it('rejects a grid that is not a whole number of merge blocks', () => {
    assert.throws(() => visionRotaryPositions(3, 4, 2), RangeError);
  });
});
