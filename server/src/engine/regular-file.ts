/**
 * Reading files that a user, a workspace or a model folder names: each is opened once,
 * and what was opened is checked on the descriptor (fstat), never on the path beforehand.
 *
 * - Only regular files are read. A FIFO would block `read` forever (and a plain `open`
 *   for reading blocks until a writer comes, so it is opened with O_NONBLOCK); a device
 *   such as /dev/zero never ends. Both are refused with `ENOTREG`, directories with `EISDIR`.
 * - A size limit is checked on the descriptor's size before anything is allocated, and no
 *   more than that size is read even if the file grows meanwhile (`EFBIG`).
 * - With `roots`, the file actually opened must lie inside one of them (`EOUTSIDE`): the
 *   path is resolved after the open and its (dev, ino) must be the descriptor's, so a
 *   folder swapped for a symbolic link to elsewhere between a check and the read is caught.
 */
import * as fs from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';

export type FileRefusal = 'ENOTREG' | 'EISDIR' | 'EFBIG' | 'EOUTSIDE';

/** A file that was opened but may not be read; `code` says why (Node's errno style). */
export class FileRefusedError extends Error {
  constructor(readonly code: FileRefusal, readonly path: string, message: string) {
    super(message);
    this.name = 'FileRefusedError';
  }
}

export interface ReadOptions {
  /** Refuse files larger than this many bytes. */
  readonly maxBytes?: number;
  /** The file must resolve inside one of these (already real) folders. */
  readonly roots?: readonly string[];
}

// O_NONBLOCK only changes how a FIFO or device opens; reads of regular files ignore it.
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);

/** Whether `path` is `root` or below it (both absolute, symbolic links already resolved). */
export function isInsideRoot(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Opens `path` for reading and checks the descriptor; the caller closes it.
 * @throws FileRefusedError, or Node's own errors (ENOENT, EACCES, …).
 */
export function openRegularFile(path: string, opts: ReadOptions = {}): { fd: number; size: number } {
  const fd = fs.openSync(path, OPEN_FLAGS);
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new FileRefusedError('EISDIR', path, `${path} is a folder, not a file`);
    if (!st.isFile()) {
      throw new FileRefusedError('ENOTREG', path, `${path} is not a regular file (a pipe, socket or device); only regular files are read`);
    }
    if (opts.maxBytes !== undefined && st.size > opts.maxBytes) {
      throw new FileRefusedError('EFBIG', path, `${path} is ${st.size} bytes, over the limit of ${opts.maxBytes}`);
    }
    if (opts.roots) checkInside(path, st, opts.roots);
    return { fd, size: st.size };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/**
 * The whole of a regular file, read through one descriptor.
 * @throws FileRefusedError, or Node's own errors (ENOENT, EACCES, …).
 */
export function readRegularFile(path: string, opts: ReadOptions = {}): Buffer {
  const { fd, size } = openRegularFile(path, opts);
  try {
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = fs.readSync(fd, buf, done, size - done, done);
      if (n === 0) break; // Shrunk since fstat: return what is there.
      done += n;
    }
    return done === size ? buf : buf.subarray(0, done);
  } finally {
    fs.closeSync(fd);
  }
}

/** `readRegularFile` as UTF-8 text. */
export function readRegularText(path: string, opts: ReadOptions = {}): string {
  return readRegularFile(path, opts).toString('utf8');
}

/** Checks that `path`, resolved now, is inside a root and is the file the descriptor holds. */
function checkInside(path: string, st: fs.Stats, roots: readonly string[]): void {
  let real: string;
  let now: fs.Stats;
  try {
    real = fs.realpathSync.native(path);
    now = fs.statSync(real);
  } catch {
    throw new FileRefusedError('EOUTSIDE', path, `${path} changed while it was being opened`);
  }
  if (now.dev !== st.dev || now.ino !== st.ino) {
    throw new FileRefusedError('EOUTSIDE', path, `${path} changed while it was being opened`);
  }
  if (!roots.some((r) => isInsideRoot(real, r))) {
    throw new FileRefusedError('EOUTSIDE', path, `${path} resolves to ${real}, outside the workspace folders`);
  }
}
