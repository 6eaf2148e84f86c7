/**
 * Extracts chosen regular files from a .tgz (an npm package tarball), streaming: the
 * archive is never held in memory. Reads ustar headers, GNU long names ('L') and pax
 * `path` records ('x'); every other entry is skipped. Nothing is written outside `outDir`:
 * each wanted entry goes to the fixed file name the caller gave it.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';

const BLOCK = 512;

/**
 * Writes each entry of `wanted` (tar path → file name) into `outDir`.
 * @returns file name → bytes written.
 * @throws Error when the archive is truncated or a wanted entry is absent.
 */
export async function extractTgz(tgz: string, wanted: Readonly<Record<string, string>>, outDir: string): Promise<Record<string, number>> {
  const written: Record<string, number> = {};
  let buf: Buffer = Buffer.alloc(0);
  // The entry being read: bytes of data left, padding after it, and where they go.
  let left = 0;
  let pad = 0;
  let sink: WriteStream | undefined;
  let sinkName = '';
  let longName: string | undefined;
  let meta: 'L' | 'x' | undefined;
  let metaBytes: Buffer[] = [];
  let ended = false;

  for await (const chunk of createReadStream(tgz).pipe(createGunzip())) {
    buf = buf.length ? Buffer.concat([buf, chunk as Buffer]) : (chunk as Buffer);
    for (;;) {
      if (left > 0) {
        if (buf.length === 0) break;
        const part = buf.subarray(0, Math.min(left, buf.length));
        buf = buf.subarray(part.length);
        left -= part.length;
        if (sink) {
          written[sinkName] += part.length;
          if (!sink.write(part)) await once(sink, 'drain');
        } else if (meta) {
          metaBytes.push(Buffer.from(part));
        }
        if (left > 0) break;
        if (sink) {
          sink.end();
          await once(sink, 'close');
          sink = undefined;
        }
        if (meta) {
          const body = Buffer.concat(metaBytes);
          longName = meta === 'L' ? cString(body, 0, body.length) : paxPath(body) ?? longName;
          meta = undefined;
          metaBytes = [];
        }
      }
      if (pad > 0) {
        const n = Math.min(pad, buf.length);
        buf = buf.subarray(n);
        pad -= n;
        if (pad > 0) break;
      }
      if (ended || buf.length < BLOCK) break;
      const header = buf.subarray(0, BLOCK);
      buf = buf.subarray(BLOCK);
      if (header.every((b) => b === 0)) {
        ended = true; // two zero blocks end the archive; the rest is padding
        break;
      }
      verifyChecksum(header);
      const size = numeric(header, 124, 12);
      const type = String.fromCharCode(header[156] || 0x30);
      const prefix = cString(header, 345, 155);
      const name = longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
      longName = type === 'L' || type === 'x' ? longName : undefined;
      left = size;
      pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (type === 'L' || type === 'x') {
        meta = type;
      } else if ((type === '0' || type === '7') && Object.hasOwn(wanted, name)) {
        sinkName = wanted[name];
        written[sinkName] = 0;
        sink = createWriteStream(join(outDir, sinkName), { mode: sinkName.endsWith('.so') ? 0o755 : 0o644 });
        if (size === 0) {
          sink.end();
          await once(sink, 'close');
          sink = undefined;
        }
      }
    }
  }
  if (left > 0 || !ended) throw new Error(`${tgz} is truncated`);
  const missing = Object.keys(wanted).filter((k) => !(wanted[k] in written));
  if (missing.length) throw new Error(`the package has no ${missing.join(', ')}`);
  return written;
}

function cString(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

/** Octal (NUL/space terminated) or, with the high bit set, base-256 big-endian. */
function numeric(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    let v = b[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return v;
  }
  const s = cString(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function verifyChecksum(h: Buffer): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  if (sum !== numeric(h, 148, 8)) throw new Error('corrupt tar header (checksum)');
}

/** The `path` record of a pax extended header ("<len> path=<value>\n" records). */
function paxPath(body: Buffer): string | undefined {
  let pos = 0;
  while (pos < body.length) {
    const sp = body.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = parseInt(body.toString('utf8', pos, sp), 10);
    if (!(len > 0)) break;
    const rec = body.toString('utf8', sp + 1, pos + len - 1);
    if (rec.startsWith('path=')) return rec.slice(5);
    pos += len;
  }
  return undefined;
}
