/**
 * Image KV as host bytes: the per-layer K/V of a cache entry (converted to the model's KV dtype), one tensor
 * widened to float32 for CacheBlend's deviation check, and a step's present rows put back in prompt order.
 * Row-major [rows, nKvHeads, headDim] throughout, so a row is `rowBytes` consecutive bytes.
 */
import { tensorFloat32, type CacheEntry } from '../cache/entry';

/** Prompt rows 0..n-1 in order, from present rows in `where` order. */
export function reorder(src: Uint8Array, where: Int32Array, rowBytes: number): Uint8Array {
  const out = new Uint8Array(where.length * rowBytes);
  for (let r = 0; r < where.length; r++) out.set(src.subarray(where[r] * rowBytes, (where[r] + 1) * rowBytes), r * rowBytes);
  return out;
}

/** One tensor of a KV entry (e.g. `v.1`) as float32 [rows * KV * D] (a copy: stored bytes may be unaligned). */
export function cachedFloat32(e: CacheEntry, name: string): Float32Array {
  const t = e.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`image KV entry ${e.key.slice(0, 12)} has no tensor ${name}`);
  // float16 is widened into a fresh, exact-length buffer already; float32 bytes are copied once by tensorFloat32.
  return t.dtype === 'float32' ? tensorFloat32(t) : new Float32Array(convertDtype(t.data, t.dtype, 'float32').buffer);
}

/** K and V byte arrays per layer of a KV entry, converted to `dtype` if it was stored in another. */
export function tensorsByName(e: CacheEntry, dtype: 'float32' | 'float16'): { k: Uint8Array[]; v: Uint8Array[] } {
  const byName = new Map(e.tensors.map((t) => [t.name, t]));
  const L = Number(e.meta.layers);
  const conv = (name: string) => {
    const t = byName.get(name)!;
    return t.dtype === dtype ? t.data : convertDtype(t.data, t.dtype, dtype);
  };
  return { k: Array.from({ length: L }, (_, l) => conv(`k.${l}`)), v: Array.from({ length: L }, (_, l) => conv(`v.${l}`)) };
}

function convertDtype(data: Uint8Array, from: 'float32' | 'float16', to: 'float32' | 'float16'): Uint8Array {
  if (from === to) return data;
  if (from === 'float16') {
    const h = new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    const f = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++) f[i] = halfToFloat(h[i]);
    return new Uint8Array(f.buffer);
  }
  const f = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const h = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) h[i] = floatToHalf(f[i]);
  return new Uint8Array(h.buffer);
}

function halfToFloat(x: number): number {
  const sign = x & 0x8000 ? -1 : 1, exp = (x >> 10) & 0x1f, frac = x & 0x3ff;
  return exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function floatToHalf(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >> 16) & 0x8000;
  const exp = ((u >> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant = (mant | 0x800000) >> (1 - exp);
    return sign | ((mant + 0x1000) >> 13);
  }
  return (sign | (exp << 10) | (mant >> 13)) + ((mant >> 12) & 1);
}
