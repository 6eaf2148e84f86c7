/**
 * The .safetensors format: read a file's header without touching the weight bytes,
 * read single tensors as float32, and write small files (tests, the on-disk cache).
 *
 * Layout: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON (possibly padded with
 * spaces), then the raw little-endian tensor data. The JSON maps each tensor name to
 * `{dtype, shape, data_offsets: [begin, end)}` with offsets relative to byte 8 + N, and
 * may hold a `__metadata__` object of string values.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { WeightDtype } from './config';
import { CheckpointError, REDOWNLOAD_HINT } from './errors';
import { FileRefusedError, openRegularFile } from './regular-file';

export const DTYPE_BYTES: Readonly<Record<WeightDtype, number>> = { BF16: 2, F16: 2, F32: 4 };

/** Dtypes the format defines that we recognise but cannot use (quantized or integer tensors). */
const KNOWN_UNSUPPORTED = new Set(['F64', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL',
  'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'C64']);

/** The reference implementation refuses headers above 100 MB; a real one is well under 1 MB. */
const MAX_HEADER_BYTES = 100_000_000;

/** One tensor of a .safetensors file, located precisely enough to read it in place. */
export interface TensorEntry {
  /** The name exactly as stored in the file. */
  readonly name: string;
  readonly dtype: WeightDtype;
  readonly shape: readonly number[];
  /** Absolute byte offset of the first data byte in `file` (= 8 + N + begin). */
  readonly offset: number;
  /** Byte length of the data (= product(shape) * DTYPE_BYTES[dtype]). */
  readonly byteLength: number;
  /** Absolute path of the .safetensors file. */
  readonly file: string;
}

export interface SafetensorsHeader {
  readonly file: string;
  readonly fileSize: number;
  /** Byte offset where the data region starts (= 8 + N). */
  readonly dataStart: number;
  /** The raw JSON header bytes (N of them), kept for fingerprinting. */
  readonly headerBytes: Buffer;
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensors in the order the header lists them. */
  readonly tensors: readonly TensorEntry[];
}

export interface TensorToWrite {
  readonly name: string;
  readonly dtype: WeightDtype;
  readonly shape: readonly number[];
  /** Little-endian bytes, exactly product(shape) * DTYPE_BYTES[dtype] long. */
  readonly data: Uint8Array;
}

function corrupt(file: string, what: string): CheckpointError {
  return new CheckpointError('CorruptSafetensors',
    `${file} is truncated or corrupt: ${what}. ${REDOWNLOAD_HINT}`, file);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The first and last `edgeBytes` of every tensor of one file, concatenated in header
 * order (a tensor up to 2 × edgeBytes long: all of it). The checkpoint fingerprint hashes
 * these so that two checkpoints with the same shapes but other weights (a fine-tune, a
 * retrained model) never share cached image KV; any retrained or merged tensor differs
 * at its ends. Cost: two small reads per tensor (~3 MB for a 3B model), not the weights.
 */
export function tensorEdgeSamples(header: SafetensorsHeader, edgeBytes = 4096): Buffer {
  const parts: Buffer[] = [];
  const fd = openWeights(header.file).fd;
  try {
    for (const t of header.tensors) {
      if (t.byteLength <= 2 * edgeBytes) {
        parts.push(readExactly(fd, header.file, t.offset, t.byteLength));
      } else {
        parts.push(readExactly(fd, header.file, t.offset, edgeBytes));
        parts.push(readExactly(fd, header.file, t.offset + t.byteLength - edgeBytes, edgeBytes));
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return Buffer.concat(parts);
}

/**
 * Opens a weights file for reading; a FIFO, device or folder is refused (reading one would
 * hang or never end). @throws CheckpointError `CorruptSafetensors`, or Node's ENOENT/EACCES.
 */
function openWeights(file: string): { fd: number; size: number } {
  try {
    return openRegularFile(file);
  } catch (e) {
    if (e instanceof FileRefusedError) throw corrupt(file, e.message);
    throw e;
  }
}

/** Reads exactly `length` bytes at `position`, or throws if the file ends first. */
function readExactly(fd: number, file: string, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw corrupt(file, `expected ${length} bytes at offset ${position} but the file ends early`);
    done += n;
  }
  return buf;
}

/**
 * Reads and validates the header of a .safetensors file; no tensor data is read.
 * @throws CheckpointError `CorruptSafetensors` for truncated/malformed files,
 *   `UnsupportedDtype` for tensors that are not BF16, F16 or F32.
 */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const { fd, size: fileSize } = openWeights(file);
  try {
    if (fileSize < 8) throw corrupt(file, `the file is only ${fileSize} bytes long`);
    const n64 = readExactly(fd, file, 0, 8).readBigUInt64LE(0);
    if (n64 < 2n || n64 > BigInt(MAX_HEADER_BYTES)) throw corrupt(file, `the header length ${n64} is not plausible`);
    const n = Number(n64);
    if (8 + n > fileSize) throw corrupt(file, `the header needs ${n} bytes but the file has ${fileSize - 8} after the length`);
    const headerBytes = readExactly(fd, file, 8, n);
    let json: unknown;
    try {
      json = JSON.parse(headerBytes.toString('utf8'));
    } catch (e) {
      throw corrupt(file, `the JSON header does not parse (${(e as Error).message})`);
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw corrupt(file, 'the header is not a JSON object');
    const dataStart = 8 + n;
    const metadata: Record<string, string> = {};
    const tensors: TensorEntry[] = [];
    const ranges: [number, number, string][] = [];
    for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (raw === null || typeof raw !== 'object') throw corrupt(file, '__metadata__ is not an object');
        for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
          if (typeof v !== 'string') throw corrupt(file, `__metadata__.${k} is not a string`);
          metadata[k] = v;
        }
        continue;
      }
      const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (t === null || typeof t !== 'object') throw corrupt(file, `the entry for ${name} is not an object`);
      if (typeof t.dtype !== 'string') throw corrupt(file, `${name} has no dtype`);
      if (!(t.dtype in DTYPE_BYTES)) {
        if (KNOWN_UNSUPPORTED.has(t.dtype)) {
          throw new CheckpointError('UnsupportedDtype',
            `${file} stores ${name} as ${t.dtype}; only BF16, F16 and F32 weights are supported. ` +
            'Quantized checkpoints (AWQ, GPTQ, int8, fp8) cannot be used: download the original bf16 model instead.', file);
        }
        throw corrupt(file, `${name} has unknown dtype ${JSON.stringify(t.dtype)}`);
      }
      const dtype = t.dtype as WeightDtype;
      const shape = t.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        throw corrupt(file, `${name} has an invalid shape ${JSON.stringify(shape)}`);
      }
      const off = t.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1]) {
        throw corrupt(file, `${name} has invalid data_offsets ${JSON.stringify(off)}`);
      }
      const [begin, end] = off as [number, number];
      const expected = numel(shape) * DTYPE_BYTES[dtype];
      if (end - begin !== expected) {
        throw corrupt(file, `${name} spans ${end - begin} bytes but ${dtype}[${shape.join(', ')}] needs ${expected}`);
      }
      if (dataStart + end > fileSize) {
        throw corrupt(file, `${name} ends at byte ${dataStart + end} but the file has only ${fileSize} bytes`);
      }
      ranges.push([begin, end, name]);
      tensors.push({ name, dtype, shape: Object.freeze([...shape]), offset: dataStart + begin, byteLength: expected, file });
    }
    // Overlapping ranges cannot come from a correct writer; they usually mean a damaged header.
    ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (let i = 1; i < ranges.length; i++) {
      const [b, , nm] = ranges[i];
      const [, prevEnd, prevName] = ranges[i - 1];
      if (b < prevEnd) throw corrupt(file, `the data of ${nm} overlaps ${prevName}`);
    }
    return { file, fileSize, dataStart, headerBytes, metadata, tensors };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads the raw little-endian bytes of one tensor. */
export function readTensorBytes(entry: TensorEntry): Uint8Array {
  const fd = openWeights(entry.file).fd;
  try {
    return readExactly(fd, entry.file, entry.offset, entry.byteLength);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads one tensor and widens it to float32 (BF16 and F16 conversions are exact).
 * Meant for small tensors and tests: the whole tensor is materialised in memory.
 */
export function readTensor(entry: TensorEntry): Float32Array {
  return decodeToF32(readTensorBytes(entry), entry.dtype);
}

// NOTE: typed-array views use the host byte order; every platform Node ships on for us
// (x64, arm64) is little-endian like the file format, and we assert it once here.
if (os.endianness() !== 'LE') throw new Error('safetensors.ts assumes a little-endian host');

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Converts little-endian BF16/F16/F32 bytes to float32 values. */
export function decodeToF32(bytes: Uint8Array, dtype: WeightDtype): Float32Array {
  // Copy into a fresh, aligned buffer: `bytes` may start at an odd offset of a pooled Buffer.
  const aligned = new Uint8Array(bytes).buffer;
  if (dtype === 'F32') return new Float32Array(aligned);
  const src = new Uint16Array(aligned);
  const out = new Float32Array(src.length);
  if (dtype === 'BF16') {
    // BF16 is the top half of an F32, so widening is a 16-bit shift.
    const outBits = new Uint32Array(out.buffer);
    for (let i = 0; i < src.length; i++) outBits[i] = src[i] << 16;
    return out;
  }
  for (let i = 0; i < src.length; i++) out[i] = f16BitsToF32(src[i]);
  return out;
}

function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Converts float32 values to little-endian bytes of `dtype`, rounding to nearest even. */
export function encodeFromF32(values: ArrayLike<number>, dtype: WeightDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(Float32Array.from(values).buffer);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32Scratch[0] = values[i];
    out[i] = dtype === 'BF16' ? f32BitsToBf16(u32Scratch[0]) : f32BitsToF16(u32Scratch[0]);
  }
  return new Uint8Array(out.buffer);
}

function f32BitsToBf16(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // Too large for F16: becomes infinity.
  if (e <= 0) {
    // Subnormal F16: the value is m * 2^-24, so drop (14 - e) bits of the 24-bit significand.
    const shift = 14 - e;
    if (shift > 24) return sign;
    const sig = mant | 0x800000;
    const half = 1 << (shift - 1);
    const rem = sig & ((1 << shift) - 1);
    let r = sig >>> shift;
    if (rem > half || (rem === half && (r & 1) !== 0)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and can reach infinity).
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) !== 0)) r++;
  return sign | r;
}

/**
 * Builds the 8-byte length plus JSON header for tensors laid out back to back in the
 * given order. The JSON is space-padded so the data region starts 8-byte aligned.
 */
export function encodeSafetensorsHeader(
  tensors: readonly { name: string; dtype: WeightDtype; shape: readonly number[] }[],
  metadata?: Readonly<Record<string, string>>,
): { header: Buffer; dataLength: number } {
  const json: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) json.__metadata__ = metadata;
  let pos = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in json) throw new Error(`duplicate or reserved tensor name ${t.name}`);
    const len = numel(t.shape) * DTYPE_BYTES[t.dtype];
    json[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [pos, pos + len] };
    pos += len;
  }
  let text = JSON.stringify(json);
  const unpadded = Buffer.byteLength(text, 'utf8');
  text += ' '.repeat((8 - ((8 + unpadded) % 8)) % 8);
  const body = Buffer.from(text, 'utf8');
  const header = Buffer.alloc(8 + body.length);
  header.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(header, 8);
  return { header, dataLength: pos };
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) done += fs.writeSync(fd, data, done, data.byteLength - done);
}

/**
 * Writes a .safetensors file atomically: the bytes go to a temporary file in the same
 * folder, which is fsynced and then renamed over `file`, so readers never see a torn file.
 * @throws Error when a tensor's data length does not match its dtype and shape.
 */
export function writeSafetensors(
  file: string,
  tensors: readonly TensorToWrite[],
  metadata?: Readonly<Record<string, string>>,
): void {
  for (const t of tensors) {
    const expected = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new Error(`${t.name}: ${t.data.byteLength} data bytes but ${t.dtype}[${t.shape.join(', ')}] needs ${expected}`);
    }
  }
  const { header } = encodeSafetensorsHeader(tensors, metadata);
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    writeAll(fd, header);
    for (const t of tensors) writeAll(fd, t.data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.closeSync(fd); } catch { /* already closed */ }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  // Persist the rename itself; directories cannot be opened for fsync on Windows, which is fine.
  try {
    const dfd = fs.openSync(path.dirname(file), 'r');
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  } catch { /* best effort */ }
}
