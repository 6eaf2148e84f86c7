import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { windowIndex, windowOrder } from '../../../server/src/engine/image/window-index';

/**
 * transformers' get_window_index for one frame, restated literally: pad the merged grid with -100 by
 * `v - n % v`, view as (nWinH, v, nWinW, v), permute to (nWinH, nWinW, v, v), drop the padding, then
 * cumsum the per-window counts * 4 and apply unique_consecutive.
 */
function reference(gridH: number, gridW: number): { index: number[]; cu: number[] } {
  const v = 112 / 2 / 14;
  const [h, w] = [gridH / 2, gridW / 2];
  const [ph, pw] = [h + (v - (h % v)), w + (v - (w % v))];
  const padded = (r: number, c: number) => (r < h && c < w ? r * w + c : -100);
  const index: number[] = [];
  const cu = [0];
  for (let wr = 0; wr < ph / v; wr++) {
    for (let wc = 0; wc < pw / v; wc++) {
      let n = 0;
      for (let i = 0; i < v; i++) {
        for (let j = 0; j < v; j++) {
          const u = padded(wr * v + i, wc * v + j);
          if (u !== -100) {
            index.push(u);
            n++;
          }
        }
      }
      cu.push(cu[cu.length - 1]! + n * 4);
    }
  }
  return { index, cu: cu.filter((x, i) => i === 0 || x !== cu[i - 1]) };
}

describe('windowIndex', () => {
  it('reproduces the worked example of qwen2vl.md 3.4 (grid 1 x 16 x 22)', () => {
    const windows = windowIndex(16, 22, 2, 112, 14);
    const { windowIndex: index, cuWindowSeqlens } = windowOrder(windows, 2);
    assert.deepEqual([...cuWindowSeqlens], [0, 64, 128, 176, 240, 304, 352]);
    assert.deepEqual([...index.subarray(0, 10)], [0, 1, 2, 3, 11, 12, 13, 14, 22, 23]);
    assert.deepEqual(windows.map((w) => w.length), [16, 16, 12, 16, 16, 12]);
    assert.deepEqual(windows[2], [8, 9, 10, 19, 20, 21, 30, 31, 32, 41, 42, 43]);
  });

  it('lists every merged unit exactly once', () => {
    const index = windowIndex(30, 46, 2, 112, 14).flat();
    assert.deepEqual([...index].sort((a, b) => a - b), Array.from({ length: 15 * 23 }, (_, i) => i));
  });

  it('agrees with a literal restatement of get_window_index on many grids', () => {
    for (const [gh, gw] of [[2, 2], [4, 4], [8, 8], [16, 16], [2, 40], [40, 2], [10, 14], [18, 26], [64, 46]] as const) {
      const { windowIndex: index, cuWindowSeqlens } = windowOrder(windowIndex(gh, gw, 2, 112, 14), 2);
      const ref = reference(gh, gw);
      assert.deepEqual([...index], ref.index, `grid ${gh} x ${gw}`);
      assert.deepEqual([...cuWindowSeqlens], ref.cu, `grid ${gh} x ${gw}`);
    }
  });
});
