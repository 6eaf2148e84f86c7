/**
 * A KV arena per sequence (DESIGN.md 3a, rule 2): per layer a key and a value tensor
 * [1, kvHeads, capacity, headDim] holding rows [0, length) of the sequence, keys AFTER
 * RoPE. Decode steps run kernels/graphs/decode-arena.ts with the arena bound as both
 * feed and fetch, so GroupQueryAttention appends the new row in place and every step
 * has the same shapes (what graph capture needs).
 *
 * Invariants:
 * - arena row r is sequence row r; rows [0, length) never change once written;
 * - `length` advances only after a step's run succeeded: a failed or abandoned step
 *   leaves at most row `length` written, which the next step overwrites;
 * - when full the arena doubles (up to `maxCapacity`); past that, ArenaFullError —
 *   never a silently truncated attention window.
 *
 * Today the arena is host memory on every provider (the CPU provider writes it in place;
 * a GPU provider copies it each run). Next: WebGPU gpu-buffer tensors + enableGraphCapture,
 * and CUDA device OrtValues through the C-API seam (ort-capi.ts).
 */
import { DUMMY_ROW } from './layered';
import type { ArenaGraph } from './model';
import { Tensor, i32, zeros } from './ort';
import type { Past } from './step-io';
import type { TextConfig } from '../../../kernels/graphs/config';

/** What the arena needs of a loaded model (VlModel implements it). */
export interface ArenaHost {
  readonly checkpoint: { readonly config: { readonly text: TextConfig } };
  readonly kvDtype: 'float32' | 'float16';
  runArenaGraph(graph: ArenaGraph, feeds: Record<string, Tensor>, fetches?: Record<string, Tensor>): Promise<Record<string, Tensor>>;
}

export interface ArenaOptions {
  /** Initial rows (default 1024); grown to fit the prompt, then doubled when full. */
  readonly capacity?: number;
  /** Rows the arena may grow to (the model's context). */
  readonly maxCapacity: number;
}

export const DEFAULT_ARENA_CAPACITY = 1024;

export class ArenaFullError extends Error {
  constructor(readonly rows: number, readonly maxCapacity: number) {
    super(`the KV arena cannot hold ${rows} rows: its limit is ${maxCapacity} (the model's context)`);
    this.name = 'ArenaFullError';
  }
}

type KvData = Float32Array | Uint16Array;

export class KvArena {
  private constructor(
    private readonly model: ArenaHost,
    private readonly maxCapacity: number,
    private cap: number,
    private keys: Tensor[],
    private values: Tensor[],
    private rows: number,
  ) {}

  /** Rows filled: the next step writes row `length`. */
  get length(): number {
    return this.rows;
  }

  get capacity(): number {
    return this.cap;
  }

  /**
   * An arena holding a prefill's rows: `present` (pre-RoPE keys, rows in any order,
   * DUMMY_ROW skipped) must cover rows 0..n-1 exactly once. Keys are rotated at their
   * M-RoPE positions by the arena-fill graph, the same ops the step graph applies.
   */
  static async fromPrefill(model: ArenaHost, present: Past, opts: ArenaOptions): Promise<KvArena> {
    const t = model.checkpoint.config.text;
    const nP = present.rows.length;
    const n = present.rows.filter((r) => r !== DUMMY_ROW).length;
    const seen = new Uint8Array(n);
    for (const r of present.rows) {
      if (r === DUMMY_ROW) continue;
      if (!(r >= 0 && r < n) || seen[r]) throw new Error(`a prefill's rows must be 0..${n - 1} once each to fill a KV arena (row ${r})`);
      seen[r] = 1;
    }
    // Room for the prompt and the first decoded row.
    if (n + 1 > opts.maxCapacity) throw new ArenaFullError(n + 1, opts.maxCapacity);
    let cap = Math.min(Math.max(1, opts.capacity ?? DEFAULT_ARENA_CAPACITY), opts.maxCapacity);
    while (cap < n + 1) cap = Math.min(cap * 2, opts.maxCapacity);

    const feeds: Record<string, Tensor> = { positions: i32(present.positions, [3, nP]) };
    for (let l = 0; l < t.numLayers; l++) {
      feeds[`key.${l}`] = present.keys[l];
      feeds[`value.${l}`] = present.values[l];
    }
    const out = await model.runArenaGraph('arena-fill', feeds);
    const shape = [1, t.numKvHeads, cap, t.headDim];
    const keys = Array.from({ length: t.numLayers }, () => zeros(model.kvDtype, shape));
    const values = Array.from({ length: t.numLayers }, () => zeros(model.kvDtype, shape));
    const runs = rowRuns(present.rows);
    for (let l = 0; l < t.numLayers; l++) {
      const kSrc = out[`key_rot.${l}`].data as KvData, vSrc = out[`value_t.${l}`].data as KvData; // [KV, nP, D]
      for (const [i0, r0, len] of runs) {
        for (let h = 0; h < t.numKvHeads; h++) {
          const src = (h * nP + i0) * t.headDim, dst = (h * cap + r0) * t.headDim, m = len * t.headDim;
          (keys[l].data as KvData).set(kSrc.subarray(src, src + m), dst);
          (values[l].data as KvData).set(vSrc.subarray(src, src + m), dst);
        }
      }
    }
    return new KvArena(model, opts.maxCapacity, cap, keys, values, n);
  }

  /**
   * Decodes one token at sequence row `row` (must equal `length`) and text position
   * `position` (row + ropeDelta): writes its K/V at that row and returns the logits
   * [vocab] and their argmax.
   * @throws ArenaFullError when the row is past maxCapacity.
   */
  async step(tokenId: number, row: number, position: number): Promise<{ logits: Float32Array; token: number }> {
    if (row !== this.rows) throw new Error(`KV arena holds ${this.rows} rows; cannot decode row ${row}`);
    if (row + 1 > this.cap) this.grow(row + 1);
    const feeds: Record<string, Tensor> = {
      input_ids: i32([tokenId]), position: i32([position]),
      seqlens_k: i32([row]), total_sequence_length: i32([row + 1], []),
    };
    const fetches: Record<string, Tensor> = {};
    this.keys.forEach((k, l) => { feeds[`past_key.${l}`] = k; fetches[`present_key.${l}`] = k; });
    this.values.forEach((v, l) => { feeds[`past_value.${l}`] = v; fetches[`present_value.${l}`] = v; });
    const out = await this.model.runArenaGraph('decode-arena', feeds, fetches);
    this.rows = row + 1;
    return { logits: out.logits.data as Float32Array, token: (out.next_token.data as Int32Array)[0] };
  }

  /** Rotated keys of layer `l`, rows [0, length), as [kvHeads, length, headDim] (tests, diagnostics). */
  keysOf(l: number): KvData {
    return this.slice(this.keys[l]);
  }

  valuesOf(l: number): KvData {
    return this.slice(this.values[l]);
  }

  /** Drops the tensors (device memory once the arena lives on a GPU). */
  dispose(): void {
    for (const t of [...this.keys, ...this.values]) if (t.location !== 'cpu') t.dispose();
    this.keys = [];
    this.values = [];
  }

  private slice(t: Tensor): KvData {
    const { numKvHeads: KV, headDim: D } = this.model.checkpoint.config.text;
    const data = t.data as KvData;
    const out = data instanceof Float32Array ? new Float32Array(KV * this.rows * D) : new Uint16Array(KV * this.rows * D);
    for (let h = 0; h < KV; h++) out.set(data.subarray(h * this.cap * D, (h * this.cap + this.rows) * D), h * this.rows * D);
    return out;
  }

  /** Doubles the capacity (at most maxCapacity) until `rows` fit, copying rows [0, length). */
  private grow(rows: number): void {
    if (rows > this.maxCapacity) throw new ArenaFullError(rows, this.maxCapacity);
    let cap = this.cap;
    while (cap < rows) cap = Math.min(cap * 2, this.maxCapacity);
    const { numKvHeads: KV, headDim: D } = this.model.checkpoint.config.text;
    const regrow = (t: Tensor) => {
      const n = zeros(this.model.kvDtype, [1, KV, cap, D]);
      const src = t.data as KvData;
      for (let h = 0; h < KV; h++) (n.data as KvData).set(src.subarray(h * this.cap * D, (h * this.cap + this.rows) * D), h * cap * D);
      return n;
    };
    this.keys = this.keys.map(regrow);
    this.values = this.values.map(regrow);
    this.cap = cap;
  }
}

/** Runs of consecutive rows in `rows` (DUMMY_ROW skipped): [index of the first, its row, length]. */
function rowRuns(rows: readonly number[]): [number, number, number][] {
  const runs: [number, number, number][] = [];
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] === DUMMY_ROW) continue;
    const last = runs[runs.length - 1];
    if (last && i === last[0] + last[2] && rows[i] === last[1] + last[2]) last[2]++;
    else runs.push([i, rows[i], 1]);
  }
  return runs;
}
