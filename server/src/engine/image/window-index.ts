/**
 * Qwen2.5-VL window attention layout for one image (qwen2vl.md 3.4; transformers
 * `Qwen2_5_VisionTransformerPretrainedModel.get_window_index`).
 *
 * The merged grid (gridH / M rows, gridW / M columns of merged units, each unit one 2x2 block of
 * patches, numbered row-major) is cut into windows of V x V units, V = windowSize / M / patchSize
 * (112 / 2 / 14 = 4). Windows are taken row-major over the grid padded to multiples of V, units
 * row-major inside each window. transformers pads by `V - n % V`, which adds a whole empty row or
 * column of windows when n is already a multiple of V; those windows contribute zero-length
 * segments that `unique_consecutive(cu_window_seqlens)` drops, so we simply leave empty windows out.
 */

/**
 * The windows of one image in transformers' order, each a list of merged-unit indices
 * (`row * (gridW / M) + col`). Concatenated, they are `window_index`.
 * Precondition: gridH and gridW are multiples of mergeSize.
 */
export function windowIndex(
  gridH: number,
  gridW: number,
  mergeSize: number,
  windowSize: number,
  patchSize: number,
): number[][] {
  const v = Math.floor(Math.floor(windowSize / mergeSize) / patchSize);
  if (v < 1) throw new RangeError(`window_size ${windowSize} is smaller than one merged unit`);
  const nRows = Math.floor(gridH / mergeSize);
  const nCols = Math.floor(gridW / mergeSize);
  const windows: number[][] = [];
  for (let r0 = 0; r0 < nRows; r0 += v) {
    for (let c0 = 0; c0 < nCols; c0 += v) {
      const units: number[] = [];
      for (let r = r0; r < Math.min(r0 + v, nRows); r++) {
        for (let c = c0; c < Math.min(c0 + v, nCols); c++) units.push(r * nCols + c);
      }
      windows.push(units);
    }
  }
  return windows;
}

export interface WindowOrder {
  /** [nUnits]: merged-unit index at each position of the window-ordered sequence. */
  readonly windowIndex: Int32Array;
  /** [nWindows + 1]: patch offsets where each window starts, then the total (cu_window_seqlens). */
  readonly cuWindowSeqlens: Int32Array;
}

/**
 * Flattens windows into transformers' `window_index` and the de-duplicated `cu_window_seqlens`
 * (counted in patches: mergeSize^2 per unit).
 */
export function windowOrder(windows: readonly (readonly number[])[], mergeSize: number): WindowOrder {
  const nUnits = windows.reduce((n, w) => n + w.length, 0);
  const index = new Int32Array(nUnits);
  const cu = new Int32Array(windows.length + 1);
  let p = 0;
  windows.forEach((w, i) => {
    index.set(w, p);
    p += w.length;
    cu[i + 1] = p * mergeSize * mergeSize;
  });
  return { windowIndex: index, cuWindowSeqlens: cu };
}
