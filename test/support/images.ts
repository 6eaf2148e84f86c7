/** Small deterministic test images and comparisons shared by the engine and planner tests. */
import { PNG } from 'pngjs';

/** An opaque w x h PNG with a pattern that depends on `seed`; `flip` changes one pixel's red channel. */
export function patternPng(w: number, h: number, seed: number, flip?: [number, number]): Uint8Array {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < p.data.length; i++) p.data[i] = (i % 4 === 3) ? 255 : ((i * 37 + seed * 11) >> 2) & 0xff;
  if (flip) p.data[(flip[1] * w + flip[0]) * 4] ^= 0x80;
  return PNG.sync.write(p);
}

/** max |a[i] - b[i]|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
