/**
 * The on-disk format of one cache entry: a self-describing file that is verified before anything in it is used.
 *
 * Layout (all integers little-endian):
 *
 *   [0, 8)          magic "VLCACHE\0"
 *   [8, 12)         u32 format version (FORMAT_VERSION)
 *   [12, 16)        u32 H, the byte length of the JSON header
 *   [16, 48)        SHA-256 of bytes [0, 16) followed by bytes [48, D): preamble, JSON header and padding
 *   [48, 48 + H)    JSON header (UTF-8), see DiskHeader
 *   [48 + H, D)     spaces up to D = align8(48 + H), the start of the data section
 *   [D, D + L)      data section of L = header.data_length bytes: each tensor's raw bytes at D + tensor.offset,
 *                   every offset a multiple of 8, zero bytes between tensors; CRC-32 of it = header.data_crc32
 *
 * A file is exactly D + L bytes long. The header checksum covers the metadata (a flipped digit in a start position
 * would otherwise be a wrong answer, not a failure); the data checksum covers the tensors. Together with the
 * preamble checks, every byte of a file is covered: any single changed byte is rejected. Expected damage is
 * returned as a `DecodeFailure`, never thrown.
 *
 * Why CRC-32 for the data (version 2; version 1 used SHA-256): the checks are against damage (a killed write, a bad
 * disk, a stray edit), not against an attacker — who could rewrite both checksums anyway — and CRC-32 catches every
 * error burst of up to 32 bits, so every single changed byte. It is the disk hit's cost: an 85 MB entry (one
 * 1344² image's KV at 3B shapes) takes 15 ms with zlib's CRC-32 and 57 ms with SHA-256 (2-core machine, Node 20.20).
 * Version-1 files are refused as `unsupported-version` and recomputed.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { DTYPE_BYTES, ENTRY_KINDS, entryProblem, isShape, shapeElements, KEY_PATTERN, type CacheEntry, type EntryKind, type EntryTensor, type TensorDtype } from './entry';

export const MAGIC = Buffer.from('VLCACHE\0', 'latin1'); // 8 bytes
export const FORMAT_VERSION = 2;
export const PREAMBLE_BYTES = 48;
export const ALIGN = 8;
/** Headers are a few KB (metadata and ~2 tensors per layer); anything past this is damage, not an entry. */
export const MAX_HEADER_BYTES = 16 << 20;

export interface DiskTensorInfo {
  name: string;
  dtype: TensorDtype;
  shape: number[];
  offset: number; // from the start of the data section; a multiple of ALIGN
  length: number; // bytes = product(shape) * DTYPE_BYTES[dtype]
}

/** The JSON header, field names as stored. */
export interface DiskHeader {
  format_version: number;
  key: string;
  kind: EntryKind;
  model_fingerprint: string;
  meta: Record<string, unknown>;
  tensors: DiskTensorInfo[];
  data_length: number;
  /** CRC-32 (zlib's, IEEE polynomial) of the data section, 8 lowercase hex digits. */
  data_crc32: string;
  created: string; // ISO 8601, for people reading the file; nothing depends on it
}

/** Why a file was not accepted. Every value means "treat as absent"; only `foreign-model` files are kept. */
export type DecodeFailure =
  | 'truncated' // shorter than its header says (a killed write, a full disk)
  | 'size-mismatch' // longer than its header says
  | 'bad-magic' // not a VLCache file
  | 'unsupported-version' // written by another format version
  | 'header-checksum' // the header bytes were altered
  | 'bad-header' // the header is not a valid description of an entry
  | 'key-mismatch' // the header names another entry than the file name does
  | 'data-checksum' // the tensor bytes were altered
  | 'foreign-model'; // intact, but computed by another model

export type HeaderResult =
  | { ok: true; header: DiskHeader; dataStart: number; fileBytes: number }
  | { ok: false; reason: DecodeFailure; detail: string };

export type DecodeResult = { ok: true; entry: CacheEntry; header: DiskHeader } | { ok: false; reason: DecodeFailure; detail: string; header?: DiskHeader };

/** What the reader expects; a file that names another entry or (when given) another model is refused. */
export interface DecodeExpectation {
  key: string; // the key the file name gives
  kind?: EntryKind; // omitted: either kind
  modelFingerprint?: string; // omitted: any model (the CLI checks files of every model)
}

const ZEROS = new Uint8Array(ALIGN);

export function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

/**
 * Encodes an entry as the parts of one file, to be written in order (no copy of the tensor bytes).
 * @throws TypeError when the entry is malformed (a caller bug).
 */
export function encodeEntryParts(e: CacheEntry, created: Date = new Date()): Uint8Array[] {
  const problem = entryProblem(e);
  if (problem) throw new TypeError(`cannot encode cache entry: ${problem}`);
  const tensors: DiskTensorInfo[] = [];
  const data: Uint8Array[] = [];
  let crc = 0;
  let offset = 0;
  for (const t of e.tensors) {
    const pad = align(offset) - offset;
    if (pad > 0) {
      data.push(ZEROS.subarray(0, pad));
      crc = crc32(ZEROS.subarray(0, pad), crc);
      offset += pad;
    }
    tensors.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], offset, length: t.data.byteLength });
    data.push(t.data);
    crc = crc32(t.data, crc);
    offset += t.data.byteLength;
  }
  const header: DiskHeader = {
    format_version: FORMAT_VERSION,
    key: e.key,
    kind: e.kind,
    model_fingerprint: e.modelFingerprint,
    meta: e.meta,
    tensors,
    data_length: offset,
    data_crc32: hex32(crc),
    created: created.toISOString(),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const dataStart = align(PREAMBLE_BYTES + json.length);
  const head = Buffer.alloc(dataStart, 0x20);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(FORMAT_VERSION, 8);
  head.writeUInt32LE(json.length, 12);
  json.copy(head, PREAMBLE_BYTES);
  headerDigest(head, dataStart).copy(head, 16);
  return [head, ...data];
}

/** Encodes an entry as one buffer (tests, tools); the disk tier writes the parts instead. */
export function encodeEntry(e: CacheEntry, created?: Date): Buffer {
  return Buffer.concat(encodeEntryParts(e, created));
}

/**
 * The number of leading bytes needed to decode the header (the data section's start D), from the first
 * PREAMBLE_BYTES of a file, or a failure. Lets a reader fetch exactly the header without reading the tensors.
 */
export function headerSpan(preamble: Uint8Array): { ok: true; headerLength: number; bytes: number } | { ok: false; reason: DecodeFailure; detail: string } {
  if (preamble.length < PREAMBLE_BYTES) return fail('truncated', `${preamble.length} bytes, shorter than the ${PREAMBLE_BYTES}-byte preamble`);
  const b = Buffer.from(preamble.buffer, preamble.byteOffset, preamble.byteLength);
  if (!b.subarray(0, MAGIC.length).equals(MAGIC)) return fail('bad-magic', 'not a VLCache entry file');
  const version = b.readUInt32LE(8);
  if (version !== FORMAT_VERSION) return fail('unsupported-version', `format version ${version}; this build reads ${FORMAT_VERSION}`);
  const h = b.readUInt32LE(12);
  if (h === 0 || h > MAX_HEADER_BYTES) return fail('bad-header', `header length ${h}`);
  return { ok: true, headerLength: h, bytes: align(PREAMBLE_BYTES + h) };
}

/**
 * Decodes and checks the preamble and header from the first bytes of a file (at least `headerSpan` of them).
 * `fileBytes` in the result is the size the whole file must have.
 */
export function decodeHeader(bytes: Uint8Array): HeaderResult {
  const span = headerSpan(bytes);
  if (!span.ok) return span;
  if (bytes.length < span.bytes) return fail('truncated', `${bytes.length} bytes, shorter than the ${span.bytes}-byte header`);
  if (!headerDigest(bytes, span.bytes).equals(bytes.subarray(16, PREAMBLE_BYTES))) return fail('header-checksum', 'the header does not match its checksum');
  const json = bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + span.headerLength);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8'));
  } catch {
    return fail('bad-header', 'the header is not JSON');
  }
  const problem = headerProblem(raw);
  if (problem) return fail('bad-header', problem);
  const header = raw as DiskHeader;
  return { ok: true, header, dataStart: span.bytes, fileBytes: span.bytes + header.data_length };
}

/**
 * Decodes a whole file and verifies everything: magic, version, header checksum and fields, size, the entry it
 * names, the data checksum and (when expected) the model. Tensor data are plain `Uint8Array` views into `bytes` when
 * they are 8-byte aligned in memory, into a copy otherwise: never Node `Buffer`s, whose `slice()` is a view of the
 * whole file rather than a copy (issue 9: embeddings read back with the file's header in front of them).
 */
export function decodeEntry(bytes: Uint8Array, expect: DecodeExpectation): DecodeResult {
  const h = decodeHeader(bytes);
  if (!h.ok) return h;
  const { header, dataStart, fileBytes } = h;
  if (bytes.length < fileBytes) return { ...fail('truncated', `${bytes.length} of ${fileBytes} bytes`), header };
  if (bytes.length > fileBytes) return { ...fail('size-mismatch', `${bytes.length} bytes, ${fileBytes} expected`), header };
  if (header.key !== expect.key || (expect.kind !== undefined && header.kind !== expect.kind)) {
    return { ...fail('key-mismatch', `the file holds ${header.kind} entry ${header.key}`), header };
  }
  let data = bytes.subarray(dataStart, fileBytes);
  if (hex32(crc32(data)) !== header.data_crc32) {
    return { ...fail('data-checksum', 'the tensor bytes do not match their checksum'), header };
  }
  if (expect.modelFingerprint !== undefined && header.model_fingerprint !== expect.modelFingerprint) {
    return { ...fail('foreign-model', `computed by model ${header.model_fingerprint}`), header };
  }
  // NOTE: callers view float32 data as Float32Array, which needs 4-byte alignment in memory, not just in the file.
  if (data.byteOffset % ALIGN !== 0) data = Uint8Array.from(data);
  const tensors: EntryTensor[] = header.tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    data: new Uint8Array(data.buffer, data.byteOffset + t.offset, t.length),
  }));
  const entry: CacheEntry = { key: header.key, kind: header.kind, modelFingerprint: header.model_fingerprint, meta: header.meta, tensors };
  return { ok: true, entry, header };
}

/** Says what makes a parsed header unusable, or `undefined`. Offsets must be aligned, ordered and in range. */
function headerProblem(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'the header is not an object';
  const h = raw as Partial<DiskHeader>;
  if (h.format_version !== FORMAT_VERSION) return `format_version ${String(h.format_version)}`;
  if (typeof h.key !== 'string' || !KEY_PATTERN.test(h.key)) return 'key is not a hex content key';
  if (!ENTRY_KINDS.includes(h.kind as EntryKind)) return `kind ${String(h.kind)}`;
  if (typeof h.model_fingerprint !== 'string' || h.model_fingerprint.length === 0) return 'model_fingerprint is missing';
  if (typeof h.meta !== 'object' || h.meta === null || Array.isArray(h.meta)) return 'meta is not an object';
  if (typeof h.data_crc32 !== 'string' || !/^[0-9a-f]{8}$/.test(h.data_crc32)) return 'data_crc32 is not a CRC-32';
  if (!Number.isSafeInteger(h.data_length) || h.data_length! < 0) return 'data_length is not a byte count';
  if (typeof h.created !== 'string') return 'created is missing';
  if (!Array.isArray(h.tensors)) return 'tensors is not an array';
  let end = 0;
  const names = new Set<string>();
  for (const t of h.tensors as Partial<DiskTensorInfo>[]) {
    if (typeof t !== 'object' || t === null) return 'a tensor is not an object';
    if (typeof t.name !== 'string' || t.name.length === 0 || names.has(t.name)) return 'a tensor name is missing or repeated';
    names.add(t.name);
    if (!(typeof t.dtype === 'string' && t.dtype in DTYPE_BYTES)) return `tensor ${t.name}: dtype ${String(t.dtype)}`;
    if (!isShape(t.shape)) return `tensor ${t.name}: bad shape`;
    if (!Number.isSafeInteger(t.offset) || !Number.isSafeInteger(t.length)) return `tensor ${t.name}: bad offset or length`;
    if (t.length !== shapeElements(t.shape) * DTYPE_BYTES[t.dtype]) return `tensor ${t.name}: length does not match its shape`;
    if (t.offset! % ALIGN !== 0 || t.offset! < end) return `tensor ${t.name}: offset is unaligned or overlaps`;
    end = t.offset! + t.length!;
  }
  if (end > h.data_length!) return 'tensors run past data_length';
  return undefined;
}

/** The header checksum: SHA-256 of bytes [0, 16) and [48, dataStart), so that no byte before the data is unchecked. */
function headerDigest(bytes: Uint8Array, dataStart: number): Buffer {
  return createHash('sha256').update(bytes.subarray(0, 16)).update(bytes.subarray(PREAMBLE_BYTES, dataStart)).digest();
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function fail(reason: DecodeFailure, detail: string): { ok: false; reason: DecodeFailure; detail: string } {
  return { ok: false, reason, detail };
}
