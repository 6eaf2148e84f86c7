import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { decodeEntry, decodeHeader, encodeEntry, FORMAT_VERSION, headerSpan, MAGIC, PREAMBLE_BYTES } from '../../../server/src/cache/disk-format';
import { tensorFloat32 } from '../../../server/src/cache/entry';
import { entry, key, kvEntry, MODEL, snapshot } from './helpers';

const expectA = { key: key('a'), modelFingerprint: MODEL };

describe('disk format', () => {
  it('round-trips an entry bit for bit, tensors and metadata', () => {
    const e = kvEntry('a', 5);
    const r = decodeEntry(encodeEntry(e), { ...expectA, kind: 'kv' });
    assert.ok(r.ok, r.ok ? '' : r.detail);
    assert.deepEqual(snapshot(r.entry), snapshot(e));
  });

  it('decodes tensors as plain Uint8Arrays whose slice() and tensorFloat32 hold exactly the tensor (issue 9)', () => {
    const e = entry('a', 4);
    const file = Buffer.from(encodeEntry(e)); // what readFileSync returns: a Buffer, whose slice() is a view
    const r = decodeEntry(file, expectA);
    assert.ok(r.ok, r.ok ? '' : r.detail);
    const t = r.entry.tensors[0];
    assert.ok(!Buffer.isBuffer(t.data), 'a Buffer here would make slice() a view of the whole file');
    assert.equal(t.data.slice().buffer.byteLength, e.tensors[0].data.byteLength);
    const floats = tensorFloat32(t);
    assert.equal(floats.length, e.tensors[0].data.byteLength / 4);
    assert.deepEqual(new Uint8Array(floats.buffer), new Uint8Array(e.tensors[0].data));
    // Also from a Buffer view that starts mid-pool, as Node's small-file reads do.
    assert.deepEqual(tensorFloat32({ dtype: 'float32', data: file.subarray(file.length - 8) }), new Float32Array(file.buffer.slice(file.byteOffset + file.length - 8, file.byteOffset + file.length)));
  });

  it('lays out a self-describing file: magic, version, header length, header checksum, JSON header, aligned data', () => {
    const e = kvEntry('a', 3); // 4 tensors of 3 × 2 × 4 fp16 = 48 bytes each
    const bytes = encodeEntry(e, new Date('2026-01-02T03:04:05Z'));
    assert.deepEqual(bytes.subarray(0, 8), MAGIC);
    assert.equal(bytes.readUInt32LE(8), FORMAT_VERSION);
    const h = bytes.readUInt32LE(12);
    const header = JSON.parse(bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + h).toString('utf8'));
    assert.equal(header.format_version, 2);
    assert.equal(header.key, key('a'));
    assert.equal(header.kind, 'kv');
    assert.equal(header.model_fingerprint, MODEL);
    assert.equal(header.created, '2026-01-02T03:04:05.000Z');
    assert.deepEqual(header.tensors.map((t: { offset: number; length: number }) => [t.offset, t.length]), [[0, 48], [48, 48], [96, 48], [144, 48]]);
    assert.equal(header.data_length, 192);
    const dataStart = Math.ceil((PREAMBLE_BYTES + h) / 8) * 8;
    assert.equal(bytes.length, dataStart + 192);
    assert.deepEqual(bytes.subarray(dataStart, dataStart + 48), Buffer.from(e.tensors[0].data));
    // The data checksum: zlib's CRC-32 of the whole data section, as 8 hex digits.
    assert.equal(header.data_crc32, crc32(bytes.subarray(dataStart)).toString(16).padStart(8, '0'));
  });

  it('aligns every tensor to 8 bytes, in the file and in the decoded views', () => {
    const e = entry('a', 4);
    const t2 = { name: 'odd', dtype: 'float16' as const, shape: [3], data: new Uint8Array([1, 2, 3, 4, 5, 6]) };
    const t3 = { name: 'after', dtype: 'float32' as const, shape: [1], data: new Uint8Array([9, 9, 9, 9]) };
    const mixed = { ...e, tensors: [e.tensors[0], t2, t3] };
    const r = decodeEntry(encodeEntry(mixed), expectA);
    assert.ok(r.ok);
    assert.deepEqual(r.header.tensors.map((t) => t.offset), [0, 8, 16]);
    for (const t of r.entry.tensors) assert.equal(t.data.byteOffset % 8, 0);
    assert.deepEqual(snapshot(r.entry), snapshot(mixed));
  });

  it('accepts an entry with no tensors and one with an empty tensor', () => {
    const e = { ...entry('a', 4), tensors: [{ name: 'none', dtype: 'float32' as const, shape: [0, 16], data: new Uint8Array(0) }] };
    const r = decodeEntry(encodeEntry(e), expectA);
    assert.ok(r.ok);
    assert.deepEqual(snapshot(r.entry), snapshot(e));
    const r2 = decodeEntry(encodeEntry({ ...e, tensors: [] }), expectA);
    assert.ok(r2.ok);
  });

  it('rejects every single changed byte, anywhere in the file', () => {
    const good = encodeEntry(kvEntry('a', 2));
    for (let i = 0; i < good.length; i++) {
      const bad = Buffer.from(good);
      bad[i] ^= 0x01;
      const r = decodeEntry(bad, expectA);
      assert.equal(r.ok, false, `byte ${i} of ${good.length} changed and still accepted`);
    }
  });

  it('rejects every truncation and trailing garbage, without throwing', () => {
    const good = encodeEntry(kvEntry('a', 2));
    for (let n = 0; n < good.length; n++) {
      const r = decodeEntry(good.subarray(0, n), expectA);
      assert.equal(r.ok, false);
      assert.ok(!r.ok && ['truncated', 'bad-magic', 'header-checksum'].includes(r.reason), `${n} bytes: ${!r.ok && r.reason}`);
    }
    const r = decodeEntry(Buffer.concat([good, Buffer.from([0])]), expectA);
    assert.ok(!r.ok && r.reason === 'size-mismatch');
  });

  it('names each kind of damage', () => {
    const good = encodeEntry(entry('a', 64));
    const reason = (b: Uint8Array, exp = expectA) => {
      const r = decodeEntry(b, exp);
      return r.ok ? 'ok' : r.reason;
    };
    const flip = (i: number) => { const b = Buffer.from(good); b[i] ^= 0x40; return b; };
    assert.equal(reason(good), 'ok');
    assert.equal(reason(Buffer.from('not a cache file, just some text that is long enough to have a preamble')), 'bad-magic');
    assert.equal(reason(flip(8)), 'unsupported-version');
    assert.equal(reason(flip(60)), 'header-checksum');
    assert.equal(reason(flip(good.length - 1)), 'data-checksum');
    assert.equal(reason(good.subarray(0, good.length - 1)), 'truncated');
    assert.equal(reason(good, { key: key('b'), modelFingerprint: MODEL }), 'key-mismatch');
    assert.equal(reason(good, { ...expectA, modelFingerprint: 'another-model' }), 'foreign-model');
    assert.equal(reason(new Uint8Array(0)), 'truncated');
  });

  it('refuses an entry of the other kind when a kind is expected', () => {
    const r = decodeEntry(encodeEntry(entry('a', 8, { kind: 'encoder' })), { ...expectA, kind: 'kv' });
    assert.ok(!r.ok && r.reason === 'key-mismatch');
  });

  it('rejects a header that checks out but does not describe an entry', () => {
    // A well-formed file whose header claims a tensor longer than its shape: rebuilt with a valid checksum.
    const good = encodeEntry(entry('a', 8));
    const h = good.readUInt32LE(12);
    const header = JSON.parse(good.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + h).toString());
    header.tensors[0].length = 12;
    const json = Buffer.from(JSON.stringify(header));
    const dataStart = Math.ceil((PREAMBLE_BYTES + json.length) / 8) * 8;
    const head = Buffer.alloc(dataStart, 0x20);
    good.copy(head, 0, 0, 16);
    head.writeUInt32LE(json.length, 12);
    json.copy(head, PREAMBLE_BYTES);
    createHash('sha256').update(head.subarray(0, 16)).update(head.subarray(PREAMBLE_BYTES)).digest().copy(head, 16);
    const r = decodeHeader(head);
    assert.ok(!r.ok && r.reason === 'bad-header', r.ok ? 'accepted' : r.detail);
  });

  it('decodes a header from the leading bytes alone', () => {
    const good = encodeEntry(kvEntry('a', 4));
    const span = headerSpan(good.subarray(0, PREAMBLE_BYTES));
    assert.ok(span.ok);
    const h = decodeHeader(good.subarray(0, span.bytes));
    assert.ok(h.ok);
    assert.equal(h.fileBytes, good.length);
    assert.equal(h.header.tensors.length, 4);
  });

  it('copies tensors that would be misaligned in memory', () => {
    const good = encodeEntry(entry('a', 16));
    const shifted = new Uint8Array(good.length + 1).subarray(1);
    shifted.set(good);
    const r = decodeEntry(shifted, expectA);
    assert.ok(r.ok);
    assert.equal(r.entry.tensors[0].data.byteOffset % 8, 0);
    assert.deepEqual(snapshot(r.entry), snapshot(entry('a', 16)));
  });

  it('refuses to encode a malformed entry', () => {
    const e = entry('a', 8);
    assert.throws(() => encodeEntry({ ...e, key: 'A'.repeat(64) }), TypeError);
    assert.throws(() => encodeEntry({ ...e, key: '../../etc/passwd' }), TypeError);
    assert.throws(() => encodeEntry({ ...e, tensors: [{ ...e.tensors[0], shape: [3] }] }), TypeError);
    assert.throws(() => encodeEntry({ ...e, meta: { x: undefined } }), TypeError);
    assert.throws(() => encodeEntry({ ...e, meta: { x: Number.NaN } }), TypeError);
    assert.throws(() => encodeEntry({ ...e, meta: { x: new Float32Array(2) } }), TypeError);
  });
});
