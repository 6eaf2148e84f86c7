/**
 * A cache directory as a set of files: names, header-only scans, full verification and clearing. Shared by the
 * disk tier (disk-tier.ts) and the `vlcache cache` command, which works on a directory without a model.
 *
 * Names (nothing else in the directory is ours, and nothing else is ever read or removed):
 *   `<key>.vlc`                      one entry, key = 16-128 lowercase hex digits (format: disk-format.ts)
 *   `.<key>.vlc.<pid>.<hex>.tmp`      an entry being written by process <pid>
 *   `.probe.<pid>.<hex>.tmp`          a writability probe
 * A temp file whose process is gone is what a killed write leaves behind; it is never read, only removed.
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { EntryKind } from './entry';
import { decodeEntry, decodeHeader, headerSpan, type DecodeFailure, type DiskHeader } from './disk-format';

const ENTRY_NAME = /^([0-9a-f]{16,128})\.vlc$/;
const TEMP_NAME = /^\.(?:[0-9a-f]{16,128}\.vlc|probe)\.(\d+)\.[0-9a-f]{8,}\.tmp$/;
/** Headers are a few KB: one read of this size almost always holds the whole header. */
const HEAD_READ_BYTES = 64 << 10;

export function entryFileName(key: string): string {
  return `${key}.vlc`;
}

/** The key an entry file's name gives, or `undefined` when the name is not one of our entry files. */
export function entryFileKey(name: string): string | undefined {
  return ENTRY_NAME.exec(name)?.[1];
}

/** A temp file name for a write of `key` by this process; unique, and recognised by `tempFilePid`. */
export function tempFileName(key: string | 'probe', nonce: string): string {
  return `.${key === 'probe' ? 'probe' : entryFileName(key)}.${process.pid}.${nonce}.tmp`;
}

/** The process id in a temp file's name, or `undefined` when the name is not one of our temp files. */
export function tempFilePid(name: string): number | undefined {
  const m = TEMP_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Whether a temp file is left over from a process that no longer runs (a killed or crashed write). */
export function isStaleTemp(name: string): boolean {
  const pid = tempFilePid(name);
  if (pid === undefined || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'EPERM'; // EPERM: it runs, as another user
  }
}

/** Why a file in the directory is unusable: a format failure, or an I/O error reading it. */
export interface FileFailure {
  reason: DecodeFailure | 'unreadable';
  detail: string;
}

/** One entry file as found by a header-only scan. `header` is set when the header and file size verified. */
export interface ScannedFile {
  name: string;
  key: string;
  bytes: number; // file size
  mtimeMs: number; // last access, as the disk tier records it
  header?: DiskHeader;
  failure?: FileFailure;
}

export interface DirScan {
  entries: ScannedFile[];
  tempFiles: string[]; // names of our temp files, live or stale
}

/**
 * Reads the header of every entry file, never its tensors, and checks the header checksum, the name it gives and
 * the file size it implies. Files that do not verify are returned with a `failure`; nothing is removed.
 * @throws the fs error when the directory itself cannot be read (ENOENT, ENOTDIR, EACCES).
 */
export function scanCacheDir(dir: string): DirScan {
  const out: DirScan = { entries: [], tempFiles: [] };
  for (const name of readdirSync(dir).sort()) {
    if (tempFilePid(name) !== undefined) {
      out.tempFiles.push(name);
      continue;
    }
    const key = entryFileKey(name);
    if (key !== undefined) out.entries.push(scanFile(dir, name, key));
  }
  return out;
}

function scanFile(dir: string, name: string, key: string): ScannedFile {
  const file: ScannedFile = { name, key, bytes: 0, mtimeMs: 0 };
  let fd: number | undefined;
  try {
    fd = openSync(join(dir, name), constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    file.bytes = st.size;
    file.mtimeMs = st.mtimeMs;
    let head = readAt(fd, Math.min(st.size, HEAD_READ_BYTES));
    const span = headerSpan(head);
    if (span.ok && span.bytes > head.length && span.bytes <= st.size) head = readAt(fd, span.bytes);
    const h = decodeHeader(head);
    if (!h.ok) file.failure = { reason: h.reason, detail: h.detail };
    else if (h.header.key !== key) file.failure = { reason: 'key-mismatch', detail: `the file holds entry ${h.header.key}` };
    else if (st.size < h.fileBytes) file.failure = { reason: 'truncated', detail: `${st.size} of ${h.fileBytes} bytes` };
    else if (st.size > h.fileBytes) file.failure = { reason: 'size-mismatch', detail: `${st.size} bytes, ${h.fileBytes} expected` };
    else file.header = h.header;
  } catch (e) {
    file.failure = { reason: 'unreadable', detail: errText(e) };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return file;
}

/**
 * The bytes of one entry file, read through one descriptor that must be a regular file (a
 * FIFO or a link to /dev/zero in the cache folder would hang or fill memory) whose size is the
 * one its header declares; nothing beyond the header is read until that holds. O_NONBLOCK
 * makes opening a FIFO return at once; it does not change reads of a regular file.
 * @throws Error (ENOENT, EACCES, …) when the file cannot be opened.
 */
export function readEntryFile(path: string): { ok: true; bytes: Buffer } | { ok: false; failure: FileFailure } {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, failure: { reason: 'unreadable', detail: 'not a regular file' } };
    let head = readAt(fd, Math.min(st.size, HEAD_READ_BYTES));
    const span = headerSpan(head);
    if (!span.ok) return { ok: false, failure: { reason: span.reason, detail: span.detail } };
    if (span.bytes > st.size) return { ok: false, failure: { reason: 'truncated', detail: `${st.size} bytes, shorter than its header` } };
    if (span.bytes > head.length) head = readAt(fd, span.bytes);
    const h = decodeHeader(head);
    if (!h.ok) return { ok: false, failure: { reason: h.reason, detail: h.detail } };
    if (st.size < h.fileBytes) return { ok: false, failure: { reason: 'truncated', detail: `${st.size} of ${h.fileBytes} bytes` } };
    if (st.size > h.fileBytes) return { ok: false, failure: { reason: 'size-mismatch', detail: `${st.size} bytes, ${h.fileBytes} expected` } };
    const bytes = readAt(fd, h.fileBytes);
    if (bytes.length < h.fileBytes) return { ok: false, failure: { reason: 'truncated', detail: `${bytes.length} of ${h.fileBytes} bytes` } };
    return { ok: true, bytes };
  } finally {
    closeSync(fd);
  }
}

function readAt(fd: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const r = readSync(fd, b, got, n - got, got);
    if (r === 0) break;
    got += r;
  }
  return got < n ? b.subarray(0, got) : b;
}

/** The outcome of verifying one entry file in full. */
export interface VerifiedFile {
  name: string;
  key: string;
  kind?: EntryKind; // from the header, when it verified
  bytes: number;
  mtimeMs: number;
  status: 'ok' | 'foreign' | 'dropped';
  modelFingerprint?: string; // from the header, when it verified
  failure?: FileFailure; // why it was dropped
  removed?: boolean; // for dropped files: whether the file could be deleted
}

export interface VerifyReport {
  nChecked: number;
  nOk: number;
  nForeign: number; // intact files of another model (kept)
  nDropped: number; // files that did not verify (deleted where possible)
  nTempRemoved: number; // stale temp files of killed writes
  files: VerifiedFile[];
}

/**
 * Reads every entry file in full and verifies it (disk-format.ts `decodeEntry`). Files that do not verify are
 * deleted; intact files of another model than `modelFingerprint` are reported as foreign and kept (another model
 * may share the workspace). Without `modelFingerprint` every intact file is `ok`.
 * @throws the fs error when the directory itself cannot be read.
 */
export function verifyCacheDir(dir: string, opts: { modelFingerprint?: string } = {}): VerifyReport {
  const scan = scanCacheDir(dir);
  const report: VerifyReport = { nChecked: 0, nOk: 0, nForeign: 0, nDropped: 0, nTempRemoved: 0, files: [] };
  for (const s of scan.entries) {
    report.nChecked++;
    const v: VerifiedFile = { name: s.name, key: s.key, bytes: s.bytes, mtimeMs: s.mtimeMs, status: 'ok' };
    let failure = s.failure;
    if (!failure) {
      try {
        const read = readEntryFile(join(dir, s.name));
        const r = read.ok ? decodeEntry(read.bytes, { key: s.key }) : { ok: false as const, reason: read.failure.reason, detail: read.failure.detail };
        if (r.ok) {
          v.kind = r.header.kind;
          v.modelFingerprint = r.header.model_fingerprint;
        }
        else failure = { reason: r.reason, detail: r.detail };
      } catch (e) {
        failure = { reason: 'unreadable', detail: errText(e) };
      }
    }
    if (failure) {
      v.status = 'dropped';
      v.failure = failure;
      v.removed = removeQuiet(join(dir, s.name));
      report.nDropped++;
    } else if (opts.modelFingerprint !== undefined && v.modelFingerprint !== opts.modelFingerprint) {
      v.status = 'foreign';
      report.nForeign++;
    } else {
      report.nOk++;
    }
    report.files.push(v);
  }
  for (const name of scan.tempFiles) if (isStaleTemp(name) && removeQuiet(join(dir, name))) report.nTempRemoved++;
  return report;
}

export interface ClearReport {
  nRemoved: number;
  bytesRemoved: number;
  notRemoved: string[]; // names of entry files that could not be deleted
}

/**
 * Deletes every entry file (of any model, damaged or not) and every stale temp file; leaves everything else in
 * the directory alone. Temp files of live writers are left to them.
 * @throws the fs error when the directory itself cannot be read.
 */
export function clearCacheDir(dir: string): ClearReport {
  const scan = scanCacheDir(dir);
  const report: ClearReport = { nRemoved: 0, bytesRemoved: 0, notRemoved: [] };
  for (const s of scan.entries) {
    if (removeQuiet(join(dir, s.name))) {
      report.nRemoved++;
      report.bytesRemoved += s.bytes;
    } else {
      report.notRemoved.push(s.name);
    }
  }
  for (const name of scan.tempFiles) if (isStaleTemp(name)) removeQuiet(join(dir, name));
  return report;
}

/** Deletes a file; returns whether it is gone (true when it was already absent). */
export function removeQuiet(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

export function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ? `${err.code}: ${err.message}` : String((e as Error)?.message ?? e);
}
