/**
 * The unit of the VLCache store: one content-addressed entry of raw tensor bytes plus JSON-safe metadata.
 *
 * Two kinds share one store. An `encoder` entry holds one image's merged vision embeddings
 * (`[nImageTokens, hidden]`); a `kv` entry holds that image's per-layer K (before RoPE) and V for all of its rows
 * (`[nImg, nKvHeads, headDim]` per tensor). The store addresses entries by key alone, so the caller derives
 * distinct keys for the two kinds of one image (the reuse engine hashes a kind tag into each key); a reader that
 * names the kind it expects never gets an entry of the other kind.
 *
 * This module holds no tensors of its own and imports nothing from the engine: the bytes are plain `Uint8Array`s.
 */

/** Which of the two VLCache caches an entry belongs to. */
export type EntryKind = 'encoder' | 'kv';
export const ENTRY_KINDS: readonly EntryKind[] = ['encoder', 'kv'];

/** Element types the store can hold; the bytes are little-endian IEEE 754. */
export type TensorDtype = 'float32' | 'float16';
export const DTYPE_BYTES: Readonly<Record<TensorDtype, number>> = { float32: 4, float16: 2 };

/** One named tensor. Invariant: `data.byteLength === product(shape) * DTYPE_BYTES[dtype]`. */
export interface EntryTensor {
  readonly name: string;
  readonly dtype: TensorDtype;
  readonly shape: readonly number[];
  readonly data: Uint8Array; // [product(shape) * DTYPE_BYTES[dtype]] raw element bytes
}

/**
 * A cache entry. The store takes ownership of it on `put`: callers must not write into `tensors[i].data`
 * afterwards, because the RAM tier keeps the very same bytes and the disk tier may write them later.
 */
export interface CacheEntry {
  readonly key: string; // lowercase hex content key, 16-128 digits (it becomes a file name)
  readonly kind: EntryKind;
  readonly modelFingerprint: string; // the model the tensors were computed with; another model's are never served
  readonly meta: Record<string, unknown>; // JSON-safe: it must survive a JSON round trip unchanged (jsonSafetyProblem)
  readonly tensors: readonly EntryTensor[];
}

/** Content keys are lowercase hex so that they are safe as file names on every platform. */
export const KEY_PATTERN = /^[0-9a-f]{16,128}$/;

/** The payload size of an entry: the sum of its tensors' byte lengths. Budgets are counted in these bytes. */
export function entryBytes(e: CacheEntry): number {
  let n = 0;
  for (const t of e.tensors) n += t.data.byteLength;
  return n;
}

/**
 * A tensor's elements as a fresh float32 array of exactly `shapeElements(t.shape)` values, whatever `t.data` is a
 * view of. NOTE: `new Float32Array(t.data.slice().buffer)` is wrong when `data` is a Node `Buffer` (its `slice()`
 * is a view, so `.buffer` is the whole file or pool) and `new Float32Array(data.buffer, data.byteOffset)` fails on
 * unaligned views; copying the bytes into a new buffer is right for every `Uint8Array`.
 */
export function tensorFloat32(t: Pick<EntryTensor, 'dtype' | 'data'>): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`tensorFloat32: dtype ${t.dtype}, expected float32`);
  const copy = new Uint8Array(t.data.byteLength);
  copy.set(t.data);
  return new Float32Array(copy.buffer);
}

/** The number of elements of a shape; `[]` is a scalar (1 element). */
export function shapeElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Says what is wrong with an entry, or `undefined` when it is well formed. A malformed entry is a programming
 * error in the caller (the store throws on it); it is never an expected condition.
 */
export function entryProblem(e: CacheEntry): string | undefined {
  if (typeof e.key !== 'string' || !KEY_PATTERN.test(e.key)) return `key must be 16-128 lowercase hex digits, not '${String(e.key)}'`;
  if (!ENTRY_KINDS.includes(e.kind)) return `kind must be one of ${ENTRY_KINDS.join(', ')}, not '${String(e.kind)}'`;
  if (typeof e.modelFingerprint !== 'string' || e.modelFingerprint.length === 0) return 'modelFingerprint must be a non-empty string';
  if (!isPlainObject(e.meta)) return 'meta must be a plain object';
  const metaProblem = jsonSafetyProblem(e.meta, 'meta', 0);
  if (metaProblem) return metaProblem;
  if (!Array.isArray(e.tensors)) return 'tensors must be an array';
  const names = new Set<string>();
  for (const t of e.tensors) {
    if (typeof t.name !== 'string' || t.name.length === 0) return 'every tensor needs a non-empty name';
    if (names.has(t.name)) return `tensor name '${t.name}' appears twice`;
    names.add(t.name);
    if (!(t.dtype in DTYPE_BYTES)) return `tensor '${t.name}': dtype must be float32 or float16, not '${String(t.dtype)}'`;
    if (!isShape(t.shape)) return `tensor '${t.name}': shape must be non-negative integers`;
    if (!(t.data instanceof Uint8Array)) return `tensor '${t.name}': data must be a Uint8Array`;
    const expected = shapeElements(t.shape) * DTYPE_BYTES[t.dtype as TensorDtype];
    if (t.data.byteLength !== expected) {
      return `tensor '${t.name}': ${t.data.byteLength} bytes for shape [${t.shape.join(', ')}] ${t.dtype} (expected ${expected})`;
    }
  }
  return undefined;
}

/**
 * Says why a value would not survive `JSON.parse(JSON.stringify(v))` unchanged, or `undefined` when it would.
 * NOTE: this is what makes an entry read back from disk identical to the one kept in RAM; `undefined` members,
 * NaN, ±Infinity, -0, class instances and typed arrays all change shape in JSON, so they are refused up front.
 */
export function jsonSafetyProblem(v: unknown, path: string, depth: number): string | undefined {
  if (depth > 64) return `${path} is nested too deeply`;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return undefined;
  if (typeof v === 'number') {
    return Number.isFinite(v) && !Object.is(v, -0) ? undefined : `${path} is ${String(v)}, which JSON cannot hold`;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = jsonSafetyProblem(v[i], `${path}[${i}]`, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  if (isPlainObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      const p = jsonSafetyProblem(x, `${path}.${k}`, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  return `${path} is a ${typeof v === 'object' ? (v as object).constructor?.name ?? 'object' : typeof v}, which JSON cannot hold`;
}

/** Whether a value is a shape: an array of non-negative safe integers. */
export function isShape(v: unknown): v is readonly number[] {
  return Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
