import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  decodeToF32, encodeFromF32, readSafetensorsHeader, readTensor, writeSafetensors,
} from '../../../server/src/engine/safetensors';
import { rejects, tempDir } from './helpers';

/** Writes a file from a raw JSON header string and a data region. */
function writeRaw(file: string, headerJson: string, data: Uint8Array): void {
  const body = Buffer.from(headerJson, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(body.length));
  fs.writeFileSync(file, Buffer.concat([len, body, data]));
}

describe('safetensors header', () => {
  it('reports names, dtypes, shapes and absolute offsets of what the writer wrote', () => {
    const file = path.join(tempDir(), 'a.safetensors');
    writeSafetensors(file, [
      { name: 'w', dtype: 'BF16', shape: [2, 3], data: new Uint8Array(12) },
      { name: 'b', dtype: 'F32', shape: [3], data: new Uint8Array(12) },
      { name: 'h', dtype: 'F16', shape: [1], data: new Uint8Array(2) },
    ], { format: 'pt' });
    const h = readSafetensorsHeader(file);
    assert.deepEqual(h.metadata, { format: 'pt' });
    // The writer pads the JSON so the data region starts 8-byte aligned.
    assert.equal(h.dataStart % 8, 0);
    assert.equal(h.dataStart, 8 + h.headerBytes.length);
    assert.deepEqual(h.tensors.map((t) => [t.name, t.dtype, [...t.shape], t.offset - h.dataStart, t.byteLength, t.file]), [
      ['w', 'BF16', [2, 3], 0, 12, file],
      ['b', 'F32', [3], 12, 12, file],
      ['h', 'F16', [1], 24, 2, file],
    ]);
    assert.equal(h.fileSize, h.dataStart + 26);
  });

  it('accepts a space-padded header with metadata and unordered offsets', () => {
    const file = path.join(tempDir(), 'padded.safetensors');
    writeRaw(file, '{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},' +
      '"__metadata__":{"format":"pt"}}     ', new Uint8Array(8));
    const h = readSafetensorsHeader(file);
    assert.deepEqual(h.tensors.map((t) => [t.name, [...t.shape], t.offset]), [['b', [1], h.dataStart + 4], ['a', [], h.dataStart]]);
  });

  it('names the file and says to re-download when the file is truncated', () => {
    const dir = tempDir();
    const file = path.join(dir, 'cut.safetensors');
    writeSafetensors(file, [{ name: 'w', dtype: 'F32', shape: [4], data: new Uint8Array(16) }]);
    fs.truncateSync(file, fs.statSync(file).size - 1);
    rejects(() => readSafetensorsHeader(file), 'CorruptSafetensors', file, 'truncated or corrupt', 'Re-download');
    fs.truncateSync(file, 20); // Now even the header is cut short.
    rejects(() => readSafetensorsHeader(file), 'CorruptSafetensors', file, 'header needs');
    fs.writeFileSync(file, Buffer.alloc(5));
    rejects(() => readSafetensorsHeader(file), 'CorruptSafetensors', 'only 5 bytes');
  });

  it('rejects implausible header lengths, bad JSON and inconsistent entries', () => {
    const file = path.join(tempDir(), 'bad.safetensors');
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(1n << 40n);
    fs.writeFileSync(file, huge);
    rejects(() => readSafetensorsHeader(file), 'CorruptSafetensors', 'not plausible');
    writeRaw(file, '{"w": {"dtype": "F32", ', new Uint8Array(0));
    rejects(() => readSafetensorsHeader(file), 'CorruptSafetensors', 'does not parse');
    writeRaw(file, '[1,2]', new Uint8Array(0));
    rejects(() => readSafetensorsHeader(file), 'CorruptSafetensors', 'not a JSON object');
    writeRaw(file, '{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', new Uint8Array(8));
    rejects(() => readSafetensorsHeader(file), 'CorruptSafetensors', 'spans 8 bytes but F32[3] needs 12');
    writeRaw(file, '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Uint8Array(8));
    rejects(() => readSafetensorsHeader(file), 'CorruptSafetensors', 'overlaps');
    writeRaw(file, '{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}', new Uint8Array(0));
    rejects(() => readSafetensorsHeader(file), 'CorruptSafetensors', 'invalid shape');
  });

  it('refuses quantized and unknown dtypes with advice', () => {
    const file = path.join(tempDir(), 'q.safetensors');
    writeRaw(file, '{"qweight":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}', new Uint8Array(8));
    rejects(() => readSafetensorsHeader(file), 'UnsupportedDtype', 'qweight', 'I32', 'original bf16 model');
    writeRaw(file, '{"x":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1));
    rejects(() => readSafetensorsHeader(file), 'CorruptSafetensors', 'unknown dtype');
  });
});

describe('tensor data', () => {
  it('reads BF16 exactly: each value is its 16 bits shifted up by 16', () => {
    const bits = new Uint16Array([0x3f80, 0xbf80, 0x4049, 0x0001, 0x7f80, 0xff80, 0x8000, 0x7f7f]);
    const file = path.join(tempDir(), 'bf16.safetensors');
    writeSafetensors(file, [{ name: 'x', dtype: 'BF16', shape: [8], data: new Uint8Array(bits.buffer) }]);
    const got = readTensor(readSafetensorsHeader(file).tensors[0]);
    const gotBits = new Uint32Array(got.buffer);
    assert.deepEqual([...gotBits], [...bits].map((b) => (b << 16) >>> 0));
    assert.deepEqual([...got.slice(0, 2)], [1, -1]);
    assert.equal(got[4], Infinity);
    assert.ok(Object.is(got[6], -0));
  });

  it('reads F16 exactly, including subnormals, the largest value and signed zero', () => {
    const bits = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0x8000, 0x7c00, 0x3555]);
    const got = decodeToF32(new Uint8Array(bits.buffer), 'F16');
    assert.deepEqual([...got.slice(0, 5)], [1, -2, 2 ** -24, 1023 * 2 ** -24, 65504]);
    assert.ok(Object.is(got[5], -0));
    assert.equal(got[6], Infinity);
    assert.equal(got[7], Math.fround(0.333251953125));
  });

  it('reads F32 unchanged from an unaligned offset', () => {
    const values = new Float32Array([Math.PI, -1e-30, 3e38]);
    const file = path.join(tempDir(), 'f32.safetensors');
    writeSafetensors(file, [
      { name: 'pad', dtype: 'F16', shape: [1], data: new Uint8Array(2) },
      { name: 'x', dtype: 'F32', shape: [3], data: new Uint8Array(values.buffer) },
    ]);
    const entry = readSafetensorsHeader(file).tensors[1];
    assert.equal(entry.offset % 4, 2);
    assert.deepEqual([...readTensor(entry)], [...values]);
  });

  it('encodes to BF16 and F16 with round-to-nearest-even', () => {
    // 1 + 2^-8 is a tie between BF16 neighbours 1 and 1 + 2^-7: even wins (1).
    // 1 + 3 * 2^-8 ties between 1 + 2^-7 and 1 + 2^-6: even wins (1 + 2^-6).
    const bf = decodeToF32(encodeFromF32([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20], 'BF16'), 'BF16');
    assert.deepEqual([...bf], [1, 1 + 2 ** -6, 1 + 2 ** -7]);
    const h = decodeToF32(encodeFromF32([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 2 ** -25, 3 * 2 ** -26, 1e-9], 'F16'), 'F16');
    // 65520 rounds up to infinity; 2^-25 is a tie between 0 and 2^-24 (even: 0); 1.5 * 2^-25 rounds to 2^-24.
    assert.deepEqual([...h], [1, 1 + 2 ** -9, Infinity, 0, 2 ** -24, 0]);
    assert.ok(Number.isNaN(decodeToF32(encodeFromF32([NaN], 'BF16'), 'BF16')[0]));
    assert.ok(Number.isNaN(decodeToF32(encodeFromF32([NaN], 'F16'), 'F16')[0]));
  });
});

describe('writeSafetensors', () => {
  it('replaces the target atomically and leaves no temporary files', () => {
    const dir = tempDir();
    const file = path.join(dir, 'cache.safetensors');
    writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [1], data: new Uint8Array(4) }]);
    writeSafetensors(file, [{ name: 'b', dtype: 'F32', shape: [2], data: new Uint8Array(new Float32Array([1, 2]).buffer) }]);
    assert.deepEqual(fs.readdirSync(dir), ['cache.safetensors']);
    assert.deepEqual([...readTensor(readSafetensorsHeader(file).tensors[0])], [1, 2]);
  });

  it('refuses data whose length disagrees with dtype and shape', () => {
    const dir = tempDir();
    assert.throws(() => writeSafetensors(path.join(dir, 'x.safetensors'),
      [{ name: 'a', dtype: 'BF16', shape: [3], data: new Uint8Array(4) }]), /needs 6/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
