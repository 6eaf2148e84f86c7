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
 * and reads back only what picks the next token (DESIGN.md 3a, rule 1): greedy, its argmax and
 * the non-finite flag (5 bytes); sampling, the flag and the top-K candidates (sampler.ts has the
 * rule). The logits row comes back only when asked for (evaluation, tests) or to name a NaN.
 */
import { NonFiniteError, assertFinite } from './finite';
import { DUMMY_ROW } from './layered';
import type { ArenaGraph } from './model';
import { DeviceTensor, Session, Tensor, hostBytes, i32, i64 } from './ort';
import type { Sampler } from './sampler';
import type { Past } from './step-io';
import type { TextConfig } from '../../../kernels/graphs/config';
import { sampleTopK } from '../../../kernels/graphs/decode-arena';

/** What the arena needs of a loaded model (VlModel implements it). */
export interface ArenaHost {
  readonly checkpoint: { readonly config: { readonly text: TextConfig } };
  readonly kvDtype: 'float32' | 'float16';
  runArenaGraph(graph: ArenaGraph, feeds: Record<string, Tensor>, fetches?: Record<string, Tensor>, graphId?: number): Promise<Record<string, Tensor>>;
  /** The decode step's session (native sessions hold the arena's buffers: `Session.hold`). */
  arenaSession(graph: ArenaGraph): Promise<Session>;
  /** Buffer sets kept between sequences (native sessions), so a captured step keeps its addresses. */
  readonly arenaPool: ArenaPool;
}

/**
 * One arena's buffers on the native path (CUDA; the CPU under VLCACHE_NATIVE_CPU): the K/V of
 * every layer and the decode step's inputs and outputs, all held at fixed addresses, so that a
 * step captured as a CUDA graph (`graphId`) replays on them every token and every sequence.
 */
export interface ArenaBuffers {
  readonly cap: number;
  readonly keys: DeviceTensor[];
  readonly values: DeviceTensor[];
  readonly inputIds: DeviceTensor; // [1] int32
  readonly position: DeviceTensor; // [1] int32
  readonly seqlensK: DeviceTensor; // [1] int32
  readonly logits: DeviceTensor; // [1, vocab] float32 (bound every step, read only on request)
  readonly nextToken: DeviceTensor; // [1] int32
  readonly topLogits: DeviceTensor; // [1, K] float32
  readonly topIds: DeviceTensor; // [1, K] int32
  readonly nonfinite: DeviceTensor; // [1] bool
  /** The captured graph of these addresses (ONNX Runtime's `gpu_graph_id`, >= 1). */
  readonly graphId: number;
}

/** Free buffer sets by capacity; a sequence takes one and gives it back when it ends. */
export class ArenaPool {
  private free = new Map<number, ArenaBuffers[]>();
  private nextGraphId = 1;

  /** A free set of capacity `cap`, or a new one held on `session`'s device. */
  take(session: Session, t: TextConfig, kvDtype: 'float32' | 'float16', cap: number): ArenaBuffers {
    const reused = this.free.get(cap)?.pop();
    if (reused) return reused;
    const kv = () => Array.from({ length: t.numLayers }, () => session.hold(kvDtype, [1, t.numKvHeads, cap, t.headDim]));
    const K = sampleTopK(t.vocabSize);
    return {
      cap, keys: kv(), values: kv(),
      inputIds: session.hold('int32', [1]), position: session.hold('int32', [1]), seqlensK: session.hold('int32', [1]),
      logits: session.hold('float32', [1, t.vocabSize]), nextToken: session.hold('int32', [1]),
      topLogits: session.hold('float32', [1, K]), topIds: session.hold('int32', [1, K]), nonfinite: session.hold('bool', [1]),
      graphId: this.nextGraphId++,
    };
  }

  give(b: ArenaBuffers): void {
    const list = this.free.get(b.cap) ?? [];
    list.push(b);
    this.free.set(b.cap, list);
  }

  /** Frees every free set (idle release, model disposal): device memory returns to the provider. */
  clear(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        for (const t of [...b.keys, ...b.values, b.inputIds, b.position, b.seqlensK, ...stepOutputs(b)]) t.dispose();
      }
    }
    this.free.clear();
  }
}

/** A decode step's outputs other than the arena, by output name: all bound, so a captured graph replays. */
function stepOutputs(b: ArenaBuffers): DeviceTensor[] {
  return [b.logits, b.nextToken, b.topLogits, b.topIds, b.nonfinite];
}

/** What a decode step returns beyond its K/V row. */
export interface StepOptions {
  /** Picks the next token; sampling (temperature > 0) reads the top-K candidates. Absent: greedy. */
  readonly sampler?: Sampler;
  /** Also read back the logits row [vocab] (vocab * 4 bytes: evaluation, tests). */
  readonly logits?: boolean;
}

export interface StepResult {
  /** The next token: the argmax (first maximum), or the sampler's pick from the top-K candidates. */
  readonly token: number;
  /** The logits row [vocab], when asked for. */
  readonly logits?: Float32Array;
}

/** The decode step's host-side outputs: read on demand (on a GPU each read is a download). */
interface StepReads {
  nonfinite(): boolean;
  nextToken(): number;
  top(): { ids: Int32Array; values: Float32Array };
  logits(): Float32Array;
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
    /** The native path's held buffers (keys/values above are theirs). */
    private buffers?: ArenaBuffers,
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
    const step = await model.arenaSession('decode-arena');
    if (step.native) {
      // Held buffers: the fill writes into a pooled set (the captured step's addresses).
      const b = model.arenaPool.take(step, t, model.kvDtype, cap);
      const fetches: Record<string, Tensor> = {};
      b.keys.forEach((k, l) => { fetches[`arena_key.${l}`] = k; });
      b.values.forEach((v, l) => { fetches[`arena_value.${l}`] = v; });
      try {
        await model.runArenaGraph('arena-fill', feeds, fetches);
      } catch (e) {
        model.arenaPool.give(b);
        throw e;
      }
      return new KvArena(model, opts.maxCapacity, cap, b.keys, b.values, n, b);
    }
    const out = await model.runArenaGraph('arena-fill', feeds);
    const keys = Array.from({ length: t.numLayers }, (_, l) => out[`arena_key.${l}`]);
    const values = Array.from({ length: t.numLayers }, (_, l) => out[`arena_value.${l}`]);
    return new KvArena(model, opts.maxCapacity, cap, keys, values, n);
  }

  /**
   * Decodes one token at sequence row `row` (must equal `length`) and text position
   * `position` (row + ropeDelta): writes its K/V at that row and returns the next token
   * (and the logits [vocab] when `opts.logits`).
   * @throws ArenaFullError when the row is past maxCapacity.
   * @throws NonFiniteError when the logits hold a NaN or infinity (the device's `nonfinite`
   *   flag; the row is then read back to name the value, as assertFinite does).
   */
  async step(tokenId: number, row: number, position: number, opts: StepOptions = {}): Promise<StepResult> {
    if (row !== this.rows) throw new Error(`KV arena holds ${this.rows} rows; cannot decode row ${row}`);
    if (row + 1 > this.cap) await this.grow(row + 1);
    const reads = this.buffers ? await this.stepHeld(this.buffers, tokenId, row, position) : await this.stepJs(tokenId, row, position);
    const output = `decode logits at row ${row}`;
    if (reads.nonfinite()) {
      assertFinite(reads.logits(), 'language model', output);
      throw new NonFiniteError('language model', output, -1, NaN); // the flag without a value: a broken invariant
    }
    let token: number;
    if (opts.sampler && !opts.sampler.greedy) {
      const top = reads.top();
      token = opts.sampler.pick(top.ids, top.values);
    } else {
      token = reads.nextToken();
    }
    return opts.logits ? { token, logits: reads.logits() } : { token };
  }

  /** A step on onnxruntime-node's JS API (CPU, WebGPU): its outputs come back as host tensors. */
  private async stepJs(tokenId: number, row: number, position: number): Promise<StepReads> {
    const feeds: Record<string, Tensor> = {
      input_ids: i32([tokenId]), position: i32([position]),
      seqlens_k: i32([row]), total_sequence_length: i32([row + 1], []),
    };
    const fetches: Record<string, Tensor> = {};
    this.keys.forEach((k, l) => { feeds[`past_key.${l}`] = k; fetches[`present_key.${l}`] = k; });
    this.values.forEach((v, l) => { feeds[`past_value.${l}`] = v; fetches[`present_value.${l}`] = v; });
    const out = await this.model.runArenaGraph('decode-arena', feeds, fetches);
    this.rows = row + 1;
    return {
      nonfinite: () => (out.nonfinite.data as Uint8Array)[0] !== 0,
      nextToken: () => (out.next_token.data as Int32Array)[0],
      top: () => ({ ids: out.top_ids.data as Int32Array, values: out.top_logits.data as Float32Array }),
      logits: () => out.logits.data as Float32Array,
    };
  }

  /**
   * A step on held buffers: the three scalars are copied into their device tensors, every
   * input and output is bound at its fixed address (a captured graph replays), and only the
   * outputs the caller reads are copied back. `total_sequence_length` is a host input of
   * GroupQueryAttention (its CUDA kernel reads it on the host).
   */
  private async stepHeld(b: ArenaBuffers, tokenId: number, row: number, position: number): Promise<StepReads> {
    b.inputIds.upload(Int32Array.of(tokenId));
    b.position.upload(Int32Array.of(position));
    b.seqlensK.upload(Int32Array.of(row));
    const feeds: Record<string, Tensor> = {
      input_ids: b.inputIds, position: b.position, seqlens_k: b.seqlensK, total_sequence_length: i32([row + 1], []),
    };
    const fetches: Record<string, Tensor> = {
      logits: b.logits, next_token: b.nextToken, top_logits: b.topLogits, top_ids: b.topIds, nonfinite: b.nonfinite,
    };
    b.keys.forEach((k, l) => { feeds[`past_key.${l}`] = k; fetches[`present_key.${l}`] = k; });
    b.values.forEach((v, l) => { feeds[`past_value.${l}`] = v; fetches[`present_value.${l}`] = v; });
    await this.model.runArenaGraph('decode-arena', feeds, fetches, b.graphId);
    this.rows = row + 1;
    const f32 = (t: DeviceTensor) => { const x = t.download(); return new Float32Array(x.buffer, x.byteOffset, x.byteLength / 4); };
    const s32 = (t: DeviceTensor) => { const x = t.download(); return new Int32Array(x.buffer, x.byteOffset, x.byteLength / 4); };
    return {
      nonfinite: () => b.nonfinite.download()[0] !== 0,
      nextToken: () => s32(b.nextToken)[0],
      top: () => ({ ids: s32(b.topIds), values: f32(b.topLogits) }),
      logits: () => f32(b.logits),
    };
  }

  /** Rotated keys of layer `l`, rows [0, length), as [kvHeads, length, headDim] (tests, diagnostics; a download on a GPU). */
  async keysOf(l: number): Promise<KvData> {
    return this.slice(this.keys[l]);
  }

  async valuesOf(l: number): Promise<KvData> {
    return this.slice(this.values[l]);
  }

  /** Drops the tensors (device memory once the arena lives on a GPU); held buffers go back to the pool. */
  dispose(): void {
    if (this.buffers) this.model.arenaPool.give(this.buffers);
    else for (const t of [...this.keys, ...this.values]) if (t.location !== 'cpu') t.dispose();
    this.buffers = undefined;
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
    if (this.buffers) {
      const t = this.model.checkpoint.config.text;
      const b = this.model.arenaPool.take(await this.model.arenaSession('decode-arena'), t, this.model.kvDtype, cap);
      const fetches: Record<string, Tensor> = {};
      b.keys.forEach((k, l) => { fetches[`grown_key.${l}`] = k; });
      b.values.forEach((v, l) => { fetches[`grown_value.${l}`] = v; });
      try {
        await this.model.runArenaGraph('arena-grow', feeds, fetches);
      } catch (e) {
        this.model.arenaPool.give(b);
        throw e;
      }
      this.model.arenaPool.give(this.buffers);
      this.buffers = b;
      this.keys = b.keys;
      this.values = b.values;
      this.cap = cap;
      return;
    }
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
