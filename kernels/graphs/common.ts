/**
 * Building blocks shared by the model graph builders: weights read in place from
 * the checkpoint, linear layers, norms, rotary embeddings and attention.
 *
 * Activations are 2-D `[rows, width]` (batch is always 1) so linears are plain
 * MatMuls. The residual stream, norms, rotary angles and softmax are float32;
 * `computeDtype` (float32 on CPU, float16 on GPU) is used for the matrix work.
 */
import { DType, Graph } from '../onnx/graph';

/** Where one weight tensor lives: a byte range of a .safetensors file in the model folder. */
export interface WeightRef {
  readonly dtype: 'BF16' | 'F16' | 'F32';
  readonly shape: readonly number[];
  /** Path relative to the model folder (the .onnx is written there or resolved against it). */
  readonly location: string;
  readonly offset: number;
  readonly length: number;
}

export type WeightLookup = (name: string) => WeightRef | undefined;

export interface BuildOptions {
  /** Dtype of matrix work and of KV tensors: float32 (CPU, reference) or float16 (GPU). */
  readonly computeDtype: 'float32' | 'float16';
  /**
   * `manual`: MatMul/Softmax/MatMul with an explicit additive mask (any EP).
   * `mha`: com.microsoft.MultiHeadAttention (fused kernels where the EP has them).
   * `onnx`: the language model's attention is ONNX's own Attention (opset 23), which groups query heads over
   *   key/value heads itself (no repeated K/V: 5 nodes fewer per decoder layer); the vision tower as `mha`.
   */
  readonly attention: AttentionKind;
}

export const ATTENTION_KINDS = ['manual', 'mha', 'onnx'] as const;
export type AttentionKind = (typeof ATTENTION_KINDS)[number];

/** The opset a model graph declares: ONNX's Attention needs 23. */
export function graphOpset(opts: BuildOptions): number {
  return opts.attention === 'onnx' ? 23 : 21;
}

const SAFETENSORS_DTYPE: Record<WeightRef['dtype'], DType> = { BF16: 'bfloat16', F16: 'float16', F32: 'float32' };

export class ModelGraph extends Graph {
  private weightCache = new Map<string, string>();
  /** Values made by `reshape`, and the value each reshaped. */
  private reshaped = new Map<string, string>();
  /** The reshape target a value's shape came from (by `reshape`, kept through `rotateAt`), as a key. */
  private shapeSpecs = new Map<string, string>();

  constructor(name: string, readonly lookup: WeightLookup, readonly opts: BuildOptions) {
    super(name);
  }

  get cdt(): 'float32' | 'float16' {
    return this.opts.computeDtype;
  }

  /** Shape of a checkpoint weight. @throws when the checkpoint lacks it. */
  shapeOf(name: string): readonly number[] {
    return this.ref(name).shape;
  }

  has(name: string): boolean {
    return this.lookup(name) !== undefined;
  }

  private ref(name: string): WeightRef {
    const r = this.lookup(name);
    if (!r) throw new Error(`checkpoint has no weight '${name}'`);
    return r;
  }

  /**
   * A checkpoint weight as a value of dtype `dt`, optionally transposed (2-D).
   * The Cast and Transpose of an initializer are constant-folded by ONNX Runtime at
   * session creation, so they cost nothing per run.
   */
  weight(name: string, dt: DType, transpose = false): string {
    const key = `${name}|${dt}|${transpose}`;
    const hit = this.weightCache.get(key);
    if (hit) return hit;
    const r = this.ref(name);
    let v = this.weightCache.get(`${name}|raw`);
    if (!v) {
      v = this.external(name, SAFETENSORS_DTYPE[r.dtype], [...r.shape], r.location, r.offset, r.length);
      this.weightCache.set(`${name}|raw`, v);
    }
    if (SAFETENSORS_DTYPE[r.dtype] !== dt) v = this.op('Cast', [v], { to: castCode(dt) });
    if (transpose) v = this.op('Transpose', [v], { perm: [1, 0] });
    this.weightCache.set(key, v);
    return v;
  }

  cast(x: string, dt: DType): string {
    return this.op('Cast', [x], { to: castCode(dt) });
  }

  /**
   * `x @ W^T (+ b)` for a checkpoint Linear `prefix.weight` [out, in]. Input and
   * output are in the compute dtype. With `outScale`, the input is pre-divided by it
   * and the float32 result multiplied back, so float16 never holds |y| > 65504 / outScale.
   */
  linear(x: string, prefix: string, bias = this.has(`${prefix}.bias`)): string {
    let y = this.op('MatMul', [x, this.weight(`${prefix}.weight`, this.cdt, true)]);
    if (bias) y = this.op('Add', [y, this.weight(`${prefix}.bias`, this.cdt)]);
    return y;
  }

  /**
   * Several Linears of the same input as one MatMul (e.g. q/k/v, or gate/up): the
   * transposed weights are concatenated along the output axis, which ONNX Runtime
   * folds into one initializer at load. Returns one output per prefix, in order.
   */
  fusedLinear(x: string, prefixes: readonly string[]): string[] {
    const ws = prefixes.map((p) => this.weight(`${p}.weight`, this.cdt, true)); // [in, out_i]
    let y = this.op('MatMul', [x, this.op('Concat', ws, { axis: 1 })]);
    if (prefixes.every((p) => this.has(`${p}.bias`))) {
      y = this.op('Add', [y, this.op('Concat', prefixes.map((p) => this.weight(`${p}.bias`, this.cdt)), { axis: 0 })]);
    }
    const sizes = prefixes.map((p) => this.shapeOf(`${p}.weight`)[0]);
    return this.node('Split', [y, this.i64(sizes)], { axis: -1 }, { outputs: prefixes.length });
  }

  /**
   * Residual add fused with RMSNorm: returns [norm(x + y), x + y], both float32.
   */
  addRmsNorm(x32: string, y32: string, weightName: string, eps: number): [string, string] {
    const outs = this.node('SkipSimplifiedLayerNormalization', [x32, y32, this.weight(weightName, 'float32')],
      { epsilon: { f: eps } }, { domain: 'com.microsoft', outputs: 4 });
    return [outs[0], outs[3]];
  }

  /** A linear whose input is float32 (residual stream) and output float32. */
  linear32(x: string, prefix: string, downScale = 1): string {
    if (this.cdt === 'float32') return this.linear(x, prefix);
    let xi = x;
    if (downScale !== 1) xi = this.op('Mul', [xi, this.f32(1 / downScale)]);
    let y = this.cast(this.linear(this.cast(xi, 'float16'), prefix), 'float32');
    if (downScale !== 1) y = this.op('Mul', [y, this.f32(downScale)]);
    return y;
  }

  toCompute(x32: string): string {
    return this.cdt === 'float32' ? x32 : this.cast(x32, this.cdt);
  }

  toFloat32(x: string): string {
    return this.cdt === 'float32' ? x : this.cast(x, 'float32');
  }

  /** RMSNorm in float32: x * rsqrt(mean(x^2) + eps) * w. */
  rmsNorm(x32: string, weightName: string, eps: number): string {
    return this.op('SimplifiedLayerNormalization', [x32, this.weight(weightName, 'float32')], {
      axis: -1, epsilon: { f: eps }, stash_type: 1,
    });
  }

  /** LayerNorm with bias, float32. */
  layerNorm(x32: string, prefix: string, eps: number): string {
    return this.op('LayerNormalization', [x32, this.weight(`${prefix}.weight`, 'float32'), this.weight(`${prefix}.bias`, 'float32')], {
      axis: -1, epsilon: { f: eps },
    });
  }

  /**
   * x reshaped to `shape`. A reshape of a value made here by `reshape` reshapes that value's source
   * instead (the element order never changes, so one reshape does): each layer of the step graph had
   * chains such as [nQ, H*D] -> [nQ, H, D] -> [1, nQ, H*D], and every node costs a launch per run. The
   * inner node is dropped from the model when nothing else reads it (Graph.liveNodes). A reshape to the
   * target that already gave x (or that source) its shape is no reshape at all: x (or the source) is
   * returned. Shapes here never use 0 ("copy the input's dim"), which would read the source's dims instead.
   */
  reshape(x: string, shape: number[]): string {
    if (shape.includes(0)) return this.op('Reshape', [x, this.i64(shape)]);
    const spec = shape.join(',');
    if (this.shapeSpecs.get(x) === spec) return x;
    const src = this.reshaped.get(x) ?? x;
    if (this.shapeSpecs.get(src) === spec) return src;
    const out = this.op('Reshape', [src, this.i64(shape)]);
    this.reshaped.set(out, src);
    this.shapeSpecs.set(out, spec);
    return out;
  }

  transpose(x: string, perm: number[]): string {
    return this.op('Transpose', [x], { perm });
  }

  /**
   * Rotary tables for `rotate` from per-row angles [n, D/2] (float32): cos and sin
   * [n, D/2] in the compute dtype, and position ids [1, n] = 0..n-1 (int64) that make
   * com.microsoft.RotaryEmbedding look up row i's angles for row i.
   */
  rotaryTables(angle: string): RotaryTables {
    const n = this.op('Slice', [this.op('Shape', [angle]), this.i64([0]), this.i64([1])]);
    const zero = this.i64(0, true), one = this.i64(1, true);
    const pos = this.op('Unsqueeze', [this.op('Range', [zero, this.op('Squeeze', [n, this.i64([0])]), one]), this.i64([0])]);
    return { ...this.rotaryCache(angle), pos };
  }

  /**
   * The cos and sin caches [n, D/2] (compute dtype) of per-row angles [n, D/2] float32,
   * without position ids: a graph that rotates several row subsets against one table
   * of angles builds this once and passes each subset's table indices to `rotateAt`.
   */
  rotaryCache(angle: string): RotaryCache {
    return { cos: this.toCompute(this.op('Cos', [angle])), sin: this.toCompute(this.op('Sin', [angle])) };
  }

  /**
   * Rotary embedding, rotate-half convention (x*cos + rotate_half(x)*sin), fused as
   * com.microsoft.RotaryEmbedding. x: [1, rows, heads*D] in the compute dtype, row i
   * rotated by the tables' row i. Returns the same shape.
   */
  rotate(x: string, t: RotaryTables, heads: number): string {
    return this.rotateAt(x, t, t.pos, heads);
  }

  /**
   * `rotate` with explicit position ids: x [1, rows, heads*D] (compute dtype), pos [1, rows]
   * int64 indices into the cache's rows (row i of x is rotated by cache row pos[0, i]).
   */
  rotateAt(x: string, cache: RotaryCache, pos: string, heads: number): string {
    const out = this.op('RotaryEmbedding', [x, pos, cache.cos, cache.sin], { num_heads: heads, interleaved: 0 }, 'com.microsoft');
    // Same shape as x: a later reshape to x's target is no reshape.
    const spec = this.shapeSpecs.get(x);
    if (spec !== undefined) this.shapeSpecs.set(out, spec);
    return out;
  }

  /**
   * Scaled dot-product attention over independent blocks.
   *   q: [B, H, Lq, D], k, v: [B, H, Lk, D] (same dtype), mask: additive float32 broadcastable
   *   to [B, H, Lq, Lk] or undefined. Returns [B, H, Lq, D] in the compute dtype.
   * Scores and softmax are float32.
   */
  attend(q: string, k: string, v: string, headDim: number, mask?: string): string {
    const q32 = this.toFloat32(q);
    const k32 = this.toFloat32(k);
    let s = this.op('MatMul', [q32, this.transpose(k32, [0, 1, 3, 2])]);
    s = this.op('Mul', [s, this.f32(1 / Math.sqrt(headDim))]);
    if (mask) s = this.op('Add', [s, mask]);
    const p = this.op('Softmax', [s], { axis: -1 });
    return this.toCompute(this.op('MatMul', [p, this.toFloat32(v)]));
  }

  /**
   * com.microsoft.MultiHeadAttention (fused kernels where the provider has them).
   * q: [B, Lq, H*D], k, v: [B, Lk, H*D]; bias [B or 1, 1, Lq, Lk] exactly; all in the
   * compute dtype (callers build the bias once per graph, not per layer). Returns [B, Lq, H*D].
   */
  mha(q: string, k: string, v: string, numHeads: number, headDim: number, bias?: string): string {
    const inputs = [q, k, v];
    if (bias) inputs.push('', '', bias);
    return this.op('MultiHeadAttention', inputs, { num_heads: numHeads, scale: { f: 1 / Math.sqrt(headDim) } }, 'com.microsoft');
  }
}

export interface RotaryCache {
  /** [n, D/2] in the compute dtype. */
  readonly cos: string;
  readonly sin: string;
}

export interface RotaryTables extends RotaryCache {
  /** [1, n] int64 0..n-1. */
  readonly pos: string;
}

/** TensorProto.DataType code for a Cast's `to`. */
export function castCode(dt: DType): number {
  return { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10, bfloat16: 16 }[dt];
}

/** Large negative used for masked attention logits (finite, so fully masked rows cannot produce NaN). */
export const MASKED = -1e30;

/**
 * theta^(-2i/dim) for i in [0, dim/2), rounded the way PyTorch computes it in
 * float32: `1.0 / (theta ** (arange(0, dim, 2).float() / dim))`, each step rounded.
 */
export function ropeInvFreq(theta: number, dim: number): number[] {
  const f = Math.fround;
  return Array.from({ length: dim / 2 }, (_, i) => f(1 / f(Math.pow(f(theta), f(f(2 * i) / dim)))));
}
