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
 * The arena lives where the provider computes: host memory on the CPU, device OrtValues on
 * CUDA (the C-API seam, ort-capi.ts), GPU buffers on WebGPU. It is made and grown by graphs
 * (arena-fill, arena-grow), so it never crosses the host; a decode step uploads four scalars
 * and reads back the logits and the argmax.
 */
import { DUMMY_ROW } from './layered';
import type { ArenaGraph } from './model';
import { Tensor, hostBytes, i32, i64 } from './ort';
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

    // order[r] = the index among the present's rows of arena row r.
    const order = new Int32Array(n);
    present.rows.forEach((r, i) => { if (r !== DUMMY_ROW) order[r] = i; });
    const feeds: Record<string, Tensor> = { positions: i32(present.positions, [3, nP]), order: i32(order), pads: padRows(cap - n) };
    for (let l = 0; l < t.numLayers; l++) {
      feeds[`key.${l}`] = present.keys[l];
      feeds[`value.${l}`] = present.values[l];
    }
    const out = await model.runArenaGraph('arena-fill', feeds);
    const keys = Array.from({ length: t.numLayers }, (_, l) => out[`arena_key.${l}`]);
    const values = Array.from({ length: t.numLayers }, (_, l) => out[`arena_value.${l}`]);
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
    if (row + 1 > this.cap) await this.grow(row + 1);
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

  /** Rotated keys of layer `l`, rows [0, length), as [kvHeads, length, headDim] (tests, diagnostics; a download on a GPU). */
  async keysOf(l: number): Promise<KvData> {
    return this.slice(this.keys[l]);
  }

  async valuesOf(l: number): Promise<KvData> {
    return this.slice(this.values[l]);
  }

  /** Drops the tensors (device memory once the arena lives on a GPU). */
  dispose(): void {
    for (const t of [...this.keys, ...this.values]) if (t.location !== 'cpu') t.dispose();
    this.keys = [];
    this.values = [];
  }

  private async slice(t: Tensor): Promise<KvData> {
    const { numKvHeads: KV, headDim: D } = this.model.checkpoint.config.text;
    const b = await hostBytes(t);
    const data = this.model.kvDtype === 'float32' ? new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) : new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
    const out = data instanceof Float32Array ? new Float32Array(KV * this.rows * D) : new Uint16Array(KV * this.rows * D);
    for (let h = 0; h < KV; h++) out.set(data.subarray(h * this.cap * D, (h * this.cap + this.rows) * D), h * this.rows * D);
    return out;
  }

  /**
   * Grows the capacity (doubling, at most maxCapacity) until `rows` fit: the arena-grow graph
   * pads every layer on the device; the old tensors are released once the new ones exist.
   */
  private async grow(rows: number): Promise<void> {
    if (rows > this.maxCapacity) throw new ArenaFullError(rows, this.maxCapacity);
    let cap = this.cap;
    while (cap < rows) cap = Math.min(cap * 2, this.maxCapacity);
    const feeds: Record<string, Tensor> = { pads: padRows(cap - this.cap) };
    this.keys.forEach((k, l) => { feeds[`key.${l}`] = k; });
    this.values.forEach((v, l) => { feeds[`value.${l}`] = v; });
    const out = await this.model.runArenaGraph('arena-grow', feeds);
    const old = [...this.keys, ...this.values];
    this.keys = this.keys.map((_, l) => out[`grown_key.${l}`]);
    this.values = this.values.map((_, l) => out[`grown_value.${l}`]);
    this.cap = cap;
    for (const t of old) if (t.location !== 'cpu') t.dispose();
  }
}

/** Pad's pads for [1, KV, rows, D]: `extra` zero rows after the last. */
function padRows(extra: number): Tensor {
  return i64([0, 0, 0, 0, 0, 0, extra, 0]);
}
