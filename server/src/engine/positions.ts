/**
 * M-RoPE positions for a prompt, with transformers' `get_rope_index` semantics
 * for still images (grid_t = 1).
 *
 * Text rows get the same position p on all three streams (t, h, w), one more
 * than the largest position before them. The rows of an image whose merged grid
 * is h' x w' and whose first row gets start s are (s, s + r, s + c) in
 * row-major order; the row after the image starts at s + max(h', w').
 */

export interface ImageSpan {
  /** Rows [row0, row0 + h*w) of the prompt hold this image's tokens. */
  readonly row0: number;
  /** Merged grid (LLM tokens per column / per row). */
  readonly h: number;
  readonly w: number;
}

export interface Positions {
  /** [3, n] flattened stream-major: t positions, then h, then w. */
  readonly data: Int32Array;
  readonly n: number;
  /** Decode offset: a token at row c gets position c + ropeDelta on all streams. */
  readonly ropeDelta: number;
}

/** Precondition: spans are sorted, disjoint and inside [0, n). */
export function ropePositions(n: number, images: readonly ImageSpan[]): Positions {
  const data = new Int32Array(3 * n);
  let next = 0; // position of the next text row
  let row = 0;
  const setText = (r: number, p: number) => { data[r] = p; data[n + r] = p; data[2 * n + r] = p; };
  for (const img of images) {
    for (; row < img.row0; row++) setText(row, next++);
    const s = next;
    for (let r = 0; r < img.h; r++) {
      for (let c = 0; c < img.w; c++, row++) {
        data[row] = s;
        data[n + row] = s + r;
        data[2 * n + row] = s + c;
      }
    }
    next = s + Math.max(img.h, img.w);
  }
  for (; row < n; row++) setText(row, next++);
  // max(position) + 1 - n, i.e. sum over images of max(h', w') - h' * w'.
  return { data, n, ropeDelta: next - n };
}

/** Positions [3, rows.length] for selected rows, stream-major, as plain numbers. */
export function selectPositions(p: Positions, rows: readonly number[]): number[] {
  const out = new Array<number>(3 * rows.length);
  for (let s = 0; s < 3; s++) for (let i = 0; i < rows.length; i++) out[s * rows.length + i] = p.data[s * p.n + rows[i]];
  return out;
}
