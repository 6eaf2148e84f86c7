/**
 * A small ONNX graph builder. Builders in kernels/graphs/ describe a model as
 * calls on a `Graph`; `Graph.toModel()` encodes an ONNX ModelProto with the
 * hand-rolled protobuf writer. Weights never enter the protobuf: they are
 * external-data initializers that point into the checkpoint's .safetensors
 * files (location/offset/length), so the encoded model stays a few hundred KB.
 */
import { ProtoWriter } from './protobuf';

export type DType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'bool' | 'uint8';
/** A dimension: a fixed size or a symbolic name. */
export type Dim = number | string;

const DTYPE_CODE: Record<DType, number> = {
  float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10, bfloat16: 16,
};

export function dtypeCode(d: DType): number {
  return DTYPE_CODE[d];
}

/** Attribute values: numbers are ints; wrap floats as {f}, float lists as {floats}. */
export type Attr = number | number[] | string | { f: number } | { floats: number[] } | { tensor: ConstTensor };

export interface ConstTensor {
  dtype: DType;
  dims: number[];
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;
}

interface NodeSpec {
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
  name: string;
}

interface ValueInfo {
  name: string;
  dtype: DType;
  shape: Dim[];
}

interface Initializer {
  name: string;
  dtype: DType;
  dims: number[];
  raw?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

export interface OpOptions {
  domain?: string;
  /** Number of outputs (default 1) or explicit output names. */
  outputs?: number | string[];
}

export class Graph {
  private nodes: NodeSpec[] = [];
  private inputs: ValueInfo[] = [];
  private outputs: ValueInfo[] = [];
  private inits: Initializer[] = [];
  private constCache = new Map<string, string>();
  private counter = 0;
  /** Values renamed to a graph output's name by `output`: old name -> output name. */
  private aliases = new Map<string, string>();
  /** Name prefix for generated values; set by `scope()`. */
  private prefix = '';

  constructor(readonly name: string) {}

  /** Runs `body` with generated names prefixed by `scope/` (readable graphs, unique names). */
  scope<T>(scope: string, body: () => T): T {
    const saved = this.prefix;
    this.prefix = `${saved}${scope}/`;
    try {
      return body();
    } finally {
      this.prefix = saved;
    }
  }

  fresh(hint: string): string {
    return `${this.prefix}${hint}_${this.counter++}`;
  }

  input(name: string, dtype: DType, shape: Dim[]): string {
    this.inputs.push({ name, dtype, shape });
    return name;
  }

  /**
   * Marks `value` as a graph output named `name`. A value computed by a node of this graph is renamed
   * in place (its node writes `name`; earlier and later uses of `value` read `name`), so no Identity
   * node copies it: on CUDA each Identity is a device copy plus a kernel launch per run (72 per step
   * run of a 36-layer model, for its present K/V). A graph input, an initializer or a value already
   * output under another name is copied by an Identity node.
   */
  output(value: string, name: string, dtype: DType, shape: Dim[]): void {
    const v = this.resolve(value);
    const producer = v === name ? undefined : this.nodes.find((n) => n.outputs.includes(v));
    if (v !== name && producer && !this.outputs.some((o) => o.name === v)) {
      producer.outputs = producer.outputs.map((o) => (o === v ? name : o));
      for (const n of this.nodes) n.inputs = n.inputs.map((i) => (i === v ? name : i));
      this.aliases.set(v, name);
    } else if (v !== name) {
      this.node('Identity', [v], {}, { outputs: [name] });
    }
    this.outputs.push({ name, dtype, shape });
  }

  /** The current name of `value` (outputs renamed by `output` keep answering to their old names). */
  private resolve(value: string): string {
    return this.aliases.get(value) ?? value;
  }

  /** An initializer whose bytes live in an external file (a .safetensors shard). */
  external(name: string, dtype: DType, dims: number[], location: string, offset: number, length: number): string {
    this.inits.push({ name, dtype, dims, external: { location, offset, length } });
    return name;
  }

  /** An inline initializer; identical small constants are shared. */
  constant(t: ConstTensor): string {
    const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const key = `${t.dtype}|${t.dims.join(',')}|${Buffer.from(raw).toString('base64')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = `const_${this.counter++}`;
    this.inits.push({ name, dtype: t.dtype, dims: t.dims, raw: raw.slice() });
    this.constCache.set(key, name);
    return name;
  }

  /** int64 constant: a scalar when `scalar`, else a 1-D tensor. */
  i64(values: number[] | number, scalar = false): string {
    const arr = Array.isArray(values) ? values : [values];
    return this.constant({
      dtype: 'int64', dims: scalar ? [] : [arr.length], data: BigInt64Array.from(arr.map((v) => BigInt(v))),
    });
  }

  /** int32 1-D constant (gather indices that must stay on WebGPU). */
  i32(values: number[]): string {
    return this.constant({ dtype: 'int32', dims: [values.length], data: Int32Array.from(values) });
  }

  f32(values: number[] | number, dims?: number[]): string {
    const arr = Array.isArray(values) ? values : [values];
    return this.constant({ dtype: 'float32', dims: dims ?? (Array.isArray(values) ? [arr.length] : []), data: Float32Array.from(arr) });
  }

  /** Adds a node; returns its output names. */
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, opts: OpOptions = {}): string[] {
    const outs = Array.isArray(opts.outputs)
      ? opts.outputs
      : Array.from({ length: opts.outputs ?? 1 }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, domain: opts.domain ?? '', inputs: inputs.map((i) => this.resolve(i)), outputs: outs, attrs, name: this.fresh(`n_${op}`) });
    return outs;
  }

  /** Single-output node. */
  op(op: string, inputs: string[], attrs: Record<string, Attr> = {}, domain = ''): string {
    return this.node(op, inputs, attrs, { domain })[0];
  }

  /**
   * The nodes that some graph output depends on, in order. Nodes are added in topological order, so one
   * backward pass finds them. Dead nodes appear when a builder folds a chain (ModelGraph.reshape
   * reshapes the original of a reshape): ONNX Runtime would still run them.
   */
  private liveNodes(): NodeSpec[] {
    const needed = new Set(this.outputs.map((o) => o.name));
    const live: NodeSpec[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (!n.outputs.some((o) => needed.has(o))) continue;
      live.push(n);
      for (const input of n.inputs) needed.add(input);
    }
    return live.reverse();
  }

  toModel(opts: { opset?: number; producer?: string } = {}): Uint8Array {
    const m = new ProtoWriter();
    m.int(1, 10); // ir_version 10 (ONNX 1.16+), read by ORT 1.30.
    m.string(2, opts.producer ?? 'vlcache-kernels');
    m.message(7, this.encodeGraph());
    m.message(8, new ProtoWriter().string(1, '').int(2, opts.opset ?? 21));
    m.message(8, new ProtoWriter().string(1, 'com.microsoft').int(2, 1));
    return m.finish();
  }

  private encodeGraph(): ProtoWriter {
    const g = new ProtoWriter();
    for (const n of this.liveNodes()) g.message(1, encodeNode(n));
    g.string(2, this.name);
    for (const i of this.inits) g.message(5, encodeInitializer(i));
    for (const v of this.inputs) g.message(11, encodeValueInfo(v));
    for (const v of this.outputs) g.message(12, encodeValueInfo(v));
    return g;
  }
}

function encodeNode(n: NodeSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.op);
  for (const [k, v] of Object.entries(n.attrs)) w.message(5, encodeAttr(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

// AttributeProto.type enum values.
const ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_STRING = 3, ATTR_TENSOR = 4, ATTR_FLOATS = 6, ATTR_INTS = 7;

function encodeAttr(name: string, v: Attr): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an int; wrap floats as {f}`);
    w.int(3, v).int(20, ATTR_INT);
  } else if (typeof v === 'string') {
    w.string(4, v).int(20, ATTR_STRING);
  } else if (Array.isArray(v)) {
    w.packedInts(8, v).int(20, ATTR_INTS);
  } else if ('f' in v) {
    w.float(2, v.f).int(20, ATTR_FLOAT);
  } else if ('floats' in v) {
    w.packedFloats(7, v.floats).int(20, ATTR_FLOATS);
  } else {
    const t = v.tensor;
    w.message(5, encodeInitializer({ name: '', dtype: t.dtype, dims: t.dims,
      raw: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })).int(20, ATTR_TENSOR);
  }
  return w;
}

function encodeInitializer(i: Initializer): ProtoWriter {
  const w = new ProtoWriter();
  w.packedInts(1, i.dims);
  w.int(2, DTYPE_CODE[i.dtype]);
  if (i.name) w.string(8, i.name);
  if (i.raw) w.bytes(9, i.raw);
  if (i.external) {
    const entry = (k: string, v: string) => new ProtoWriter().string(1, k).string(2, v);
    w.message(13, entry('location', i.external.location));
    w.message(13, entry('offset', String(i.external.offset)));
    w.message(13, entry('length', String(i.external.length)));
    w.int(14, 1); // data_location = EXTERNAL
  }
  return w;
}

function encodeValueInfo(v: ValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  }
  const tensorType = new ProtoWriter().int(1, DTYPE_CODE[v.dtype]).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}
