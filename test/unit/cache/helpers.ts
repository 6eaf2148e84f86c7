/** Shared fixtures for the cache tests: entries with known bytes, temp directories, a log that records. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { CacheEntry, EntryKind } from '../../../server/src/cache/entry';

export const MODEL = 'qwen2-vl-test-fingerprint';

/** A 64-digit hex key made from a short name, e.g. key('a') = 'aaaa…' (names are hex digits or short hex words). */
export function key(name: string): string {
  return name.repeat(Math.ceil(64 / name.length)).slice(0, 64);
}

/**
 * An entry with one float32 tensor of `nBytes` bytes (a multiple of 4) filled from `seed`, so that two entries
 * with different seeds differ in every byte.
 */
export function entry(name: string, nBytes: number, opts: { seed?: number; kind?: EntryKind; model?: string; meta?: Record<string, unknown> } = {}): CacheEntry {
  const data = new Uint8Array(nBytes);
  const seed = opts.seed ?? name.charCodeAt(0);
  for (let i = 0; i < nBytes; i++) data[i] = (seed * 31 + i * 7) & 0xff;
  return {
    key: key(name),
    kind: opts.kind ?? 'kv',
    modelFingerprint: opts.model ?? MODEL,
    meta: opts.meta ?? { layer_count: 1, prefix_hash: 'ab'.repeat(8), start_position: 14, note: 'fixture' },
    tensors: [{ name: 'k.0', dtype: 'float32', shape: [nBytes / 4], data }],
  };
}

/** A KV-shaped entry: K and V for 2 layers, fp16, `[nImg, nKvHeads=2, headDim=4]` each. */
export function kvEntry(name: string, nImg: number): CacheEntry {
  const tensors = [];
  for (let layer = 0; layer < 2; layer++) {
    for (const kv of ['k', 'v']) {
      const data = new Uint8Array(nImg * 2 * 4 * 2);
      for (let i = 0; i < data.length; i++) data[i] = (layer * 13 + kv.charCodeAt(0) + i) & 0xff;
      tensors.push({ name: `${kv}.${layer}`, dtype: 'float16' as const, shape: [nImg, 2, 4], data });
    }
  }
  return {
    key: key(name), kind: 'kv', modelFingerprint: MODEL, tensors,
    meta: { dtype: 'float16', layer_count: 2, shapes: { k: [nImg, 2, 4] }, prefix_hash: 'cd'.repeat(8), start_position: 3, rope: null, ok: true },
  };
}

/** A fresh directory under the OS temp dir, removed when the test file ends. */
export function tempDir(prefix = 'vlcache-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A log callback that keeps its messages. */
export function recordingLog(): { log: (m: string) => void; lines: string[] } {
  const lines: string[] = [];
  return { log: (m) => lines.push(m), lines };
}

/** A byte-for-byte copy of an entry's observable content, for deepEqual across tiers. */
export function snapshot(e: CacheEntry): unknown {
  return {
    key: e.key, kind: e.kind, modelFingerprint: e.modelFingerprint, meta: e.meta,
    tensors: e.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex') })),
  };
}
