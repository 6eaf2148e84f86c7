/** Small deterministic test images and comparisons shared by the engine and planner tests. */
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';

/** An opaque w x h PNG with a pattern that depends on `seed`; `flip` changes one pixel's red channel. */
export function patternPng(w: number, h: number, seed: number, flip?: [number, number]): Uint8Array {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < p.data.length; i++) p.data[i] = (i % 4 === 3) ? 255 : ((i * 37 + seed * 11) >> 2) & 0xff;
  if (flip) p.data[(flip[1] * w + flip[0]) * 4] ^= 0x80;
  return PNG.sync.write(p);
}

/**
 * max |a[i] - b[i]| over two arrays of the same, non-zero length. An empty array (a callback that
 * never captured anything) or a NaN is a failure, never a difference of 0 that passes a tolerance.
 */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.ok(a.length > 0, 'nothing to compare: the first array is empty');
  assert.equal(a.length, b.length, 'the arrays differ in length');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    assert.ok(!Number.isNaN(d), `NaN at ${i}: ${a[i]} vs ${b[i]}`);
    m = Math.max(m, d);
  }
  return m;
}
