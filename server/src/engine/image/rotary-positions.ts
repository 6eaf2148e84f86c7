/**
 * Per-patch 2D rotary positions for the vision tower (qwen2vl.md 3.2; transformers
 * `rot_pos_emb`): each patch's row and column in the patch grid, listed in the same 2x2-merge-block
 * order as the rows of `pixel_values` (patches.ts):
 *
 *   hpos_ids = arange(h)[:, None].expand(h, w).reshape(h/M, M, w/M, M).permute(0, 2, 1, 3).flatten()
 *   (wpos_ids likewise from arange(w)[None, :]).
 */

export interface RotaryPositions {
  /** [gridH * gridW]: the patch's row in the patch grid. */
  readonly hpos: Int32Array;
  /** [gridH * gridW]: the patch's column in the patch grid. */
  readonly wpos: Int32Array;
}

/**
 * Row and column of every patch of one frame, in pixel_values row order.
 * Precondition: gridH and gridW are multiples of mergeSize.
 */
export function visionRotaryPositions(gridH: number, gridW: number, mergeSize: number): RotaryPositions {
  if (gridH % mergeSize !== 0 || gridW % mergeSize !== 0) {
    throw new RangeError(`grid ${gridH}x${gridW} is not a multiple of merge_size ${mergeSize}`);
  }
  const n = gridH * gridW;
  const hpos = new Int32Array(n);
  const wpos = new Int32Array(n);
  let i = 0;
  for (let bh = 0; bh < gridH / mergeSize; bh++) {
    for (let bw = 0; bw < gridW / mergeSize; bw++) {
      for (let ih = 0; ih < mergeSize; ih++) {
        for (let iw = 0; iw < mergeSize; iw++, i++) {
          hpos[i] = bh * mergeSize + ih;
          wpos[i] = bw * mergeSize + iw;
        }
      }
    }
  }
  return { hpos, wpos };
}
