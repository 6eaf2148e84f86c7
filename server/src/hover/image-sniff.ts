/**
 * Whether a workspace file really is an image we decode (PNG, JPEG, GIF or WebP), from its first bytes: code lenses
 * are offered only on those, so a text file named `.png` gets no "Ask about image" (issue 11).
 *
 * VS Code asks for lenses on every edit, so the answer is kept per path and reused while the file's size and
 * modification time are unchanged (one `stat` per target per request, one 16-byte read per changed file).
 */
import { closeSync, readSync, statSync } from 'node:fs';
import { sniffFormat } from '../engine/image/format';
import { openRegularFile } from '../engine/regular-file';

/** Magic numbers need at most 12 bytes (RIFF....WEBP). */
const HEAD_BYTES = 16;
/** Paths remembered; the oldest is forgotten first. */
const MAX_REMEMBERED = 4096;

const remembered = new Map<string, { mtimeMs: number; size: number; isImage: boolean }>();

/** True when `path` is a regular file whose first bytes are a PNG, JPEG, GIF or WebP signature. */
export function isDecodableImage(path: string): boolean {
  let st;
  try {
    st = statSync(path);
  } catch {
    return false;
  }
  const known = remembered.get(path);
  if (known && known.mtimeMs === st.mtimeMs && known.size === st.size) return known.isImage;
  const isImage = st.isFile() && sniffHead(path);
  remembered.delete(path);
  remembered.set(path, { mtimeMs: st.mtimeMs, size: st.size, isImage });
  if (remembered.size > MAX_REMEMBERED) remembered.delete(remembered.keys().next().value!);
  return isImage;
}

function sniffHead(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openRegularFile(path).fd; // never blocks on a FIFO, refuses devices
    const head = new Uint8Array(HEAD_BYTES);
    const n = readSync(fd, head, 0, HEAD_BYTES, 0);
    sniffFormat(head.subarray(0, n), path);
    return true;
  } catch {
    return false; // unreadable, not a regular file, empty, not an image, or an image format we do not decode
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
