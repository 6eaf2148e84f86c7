import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TieredStore, type TieredStoreParams } from '../../../server/src/cache/store';
import { entry, key, kvEntry, MODEL, recordingLog, snapshot, tempDir } from './helpers';

function store(dir: string | undefined, more: Partial<TieredStoreParams> = {}): TieredStore & { lines: string[] } {
  const rec = recordingLog();
  const s = new TieredStore({ dir, ramBytes: 1 << 20, diskBytes: 1 << 20, modelFingerprint: MODEL, log: rec.log, ...more });
  return Object.assign(s, { lines: rec.lines });
}

describe('TieredStore', () => {
  it('gives identical entries from RAM, from disk, and from disk after a restart', async () => {
    const dir = tempDir();
    const e = kvEntry('a', 7);
    const s = store(dir);
    s.put(e);
    await s.flush();
    const fromRam = s.get(key('a'), 'kv')!;
    assert.equal(fromRam.tier, 'ram');
    const restarted = store(dir);
    const fromDisk = restarted.get(key('a'), 'kv')!;
    assert.equal(fromDisk.tier, 'disk');
    const promoted = restarted.get(key('a'), 'kv')!;
    assert.equal(promoted.tier, 'ram', 'a disk hit is promoted to RAM');
    for (const hit of [fromRam, fromDisk, promoted]) assert.deepEqual(snapshot(hit.entry), snapshot(e));
    // The decoded float16 rows read back as the same numbers, not just the same bytes.
    const view = (d: Uint8Array) => Array.from(new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2));
    assert.deepEqual(view(fromDisk.entry.tensors[3].data), view(e.tensors[3].data));
  });

  it('serves from disk what RAM has evicted', async () => {
    const s = store(tempDir(), { ramBytes: 2000 });
    for (const n of ['a', 'b', 'c']) s.put(entry(n, 1000)); // RAM keeps b, c
    await s.flush();
    assert.equal(s.get(key('c'))!.tier, 'ram');
    assert.equal(s.get(key('a'))!.tier, 'disk');
    assert.deepEqual(snapshot(s.get(key('a'))!.entry), snapshot(entry('a', 1000)));
    assert.equal(s.stats().ram.nEvictions, 2); // a to make room for c, then b for a's promotion
  });

  it('counts hits and misses by tier and by kind', async () => {
    const dir = tempDir();
    const s = store(dir);
    s.put(entry('a', 100, { kind: 'encoder' }));
    s.put(entry('b', 100, { kind: 'kv' }));
    await s.flush();
    const r = store(dir);
    r.get(key('a'), 'encoder'); // disk hit
    r.get(key('a'), 'encoder'); // RAM hit
    r.get(key('b'), 'kv'); // disk hit
    r.get(key('c'), 'kv'); // miss
    r.get(key('d')); // miss, kind not named
    r.get(key('a'), 'kv'); // the entry is an encoder entry: a miss for kv
    const st = r.stats();
    assert.deepEqual(st.hits, { encoder: 2, kv: 1, unknown: 0 });
    assert.deepEqual(st.misses, { encoder: 0, kv: 2, unknown: 1 });
    assert.deepEqual(st.ram.hits, { encoder: 1, kv: 0, unknown: 0 });
    assert.deepEqual(st.ram.misses, { encoder: 1, kv: 3, unknown: 1 });
    assert.deepEqual(st.disk!.hits, { encoder: 1, kv: 1, unknown: 0 });
    assert.deepEqual(st.disk!.misses, { encoder: 0, kv: 2, unknown: 1 });
    assert.equal(st.ram.nEntries, 2);
    assert.equal(st.disk!.nEntries, 2);
  });

  it('never lets two workspaces see each other\'s entries', async () => {
    const one = store(tempDir());
    const two = store(tempDir());
    one.put(entry('a', 100));
    await one.flush();
    assert.equal(two.get(key('a')), undefined);
    assert.equal(two.has(key('a')), false);
    two.put(entry('a', 100, { seed: 5 }));
    await two.flush();
    assert.deepEqual(snapshot(one.get(key('a'))!.entry), snapshot(entry('a', 100)));
  });

  it('never serves an entry of another model, even when its file is in the directory', async () => {
    const dir = tempDir();
    const other = store(dir, { modelFingerprint: 'qwen2.5-vl-other' });
    other.put(entry('a', 100, { model: 'qwen2.5-vl-other' }));
    await other.flush();
    const s = store(dir);
    assert.equal(s.get(key('a')), undefined);
    assert.equal(s.has(key('a')), false);
    assert.equal(s.stats().disk!.foreign.nEntries, 1);
    assert.deepEqual(s.verify(), { nChecked: 1, nOk: 0, nForeign: 1, nDropped: 0, dropped: [] });
    assert.deepEqual(readdirSync(dir), [`${key('a')}.vlc`], 'the other model keeps its entry');
    assert.throws(() => s.put(entry('b', 100, { model: 'qwen2.5-vl-other' })), TypeError);
  });

  it('verify reports and drops files that do not verify', async () => {
    const dir = tempDir();
    const s = store(dir);
    s.put(entry('a', 100));
    s.put(entry('b', 100));
    await s.flush();
    writeFileSync(join(dir, `${key('b')}.vlc`), 'VLCACHE\0 and then text, not a version, a header length or a header checksum');
    const r = s.verify();
    assert.equal(r.nChecked, 2);
    assert.equal(r.nOk, 1);
    assert.deepEqual(r.dropped.map((d) => [d.key, d.reason]), [[key('b'), 'unsupported-version']]);
    assert.match(s.lines.join('\n'), /dropped b+\.vlc \(unsupported-version/);
  });

  it('deletes and clears in every tier', async () => {
    const dir = tempDir();
    const s = store(dir);
    for (const n of ['a', 'b', 'c']) s.put(entry(n, 100));
    await s.flush();
    assert.equal(s.delete(key('a')), true);
    assert.equal(s.get(key('a')), undefined);
    assert.equal(store(dir).get(key('a')), undefined);
    s.clear();
    assert.equal(s.get(key('b')), undefined);
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(s.delete(key('b')), false);
  });

  it('works in RAM alone without a directory, or with a directory it cannot use', async () => {
    const s = store(undefined);
    s.put(entry('a', 100));
    assert.equal(s.get(key('a'))!.tier, 'ram');
    assert.equal(s.stats().disk, undefined);
    const root = tempDir();
    writeFileSync(join(root, 'file'), 'x');
    const t = store(join(root, 'file', 'cache'));
    t.put(entry('a', 100));
    t.put(entry('b', 100));
    await t.flush();
    assert.equal(t.get(key('a'))!.tier, 'ram');
    assert.equal(t.lines.length, 1, 'the unusable directory is reported once');
    assert.equal(t.stats().disk!.enabled, false);
  });

  it('tells a kind mismatch from a hit', () => {
    const s = store(undefined);
    s.put(entry('a', 100, { kind: 'encoder' }));
    assert.equal(s.get(key('a'), 'kv'), undefined);
    assert.equal(s.has(key('a'), 'kv'), false);
    assert.equal(s.has(key('a'), 'encoder'), true);
    assert.equal(s.get(key('a'), 'encoder')!.entry.kind, 'encoder');
  });

  it('refuses malformed entries and misses on keys that are not hex', () => {
    const s = store(undefined);
    assert.throws(() => s.put({ ...entry('a', 8), key: 'Not/Hex' }), TypeError);
    assert.throws(() => s.put({ ...entry('a', 8), meta: { when: new Date() } as Record<string, unknown> }), /meta.when is a Date/);
    assert.equal(s.get('../../etc/passwd'), undefined);
  });
});
