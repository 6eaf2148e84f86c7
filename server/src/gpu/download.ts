/**
 * One file over HTTP(S) into `<dest>.partial`, resumed with a Range request after an
 * interruption, and checked against a sha512 (or sha256) SRI integrity before it is renamed
 * to `dest`. A file at `dest` has always matched its integrity; a `.partial` never is one.
 * Shared by the CUDA provider install (npm registry) and the model download (models/).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';

export interface DownloadProgress {
  readonly bytes: number;
  /** Total size when the server said it; undefined otherwise. */
  readonly total?: number;
  /** Bytes that came from a previous, interrupted attempt. */
  readonly resumedFrom: number;
}

export interface DownloadOptions {
  readonly onProgress?: (p: DownloadProgress) => void;
  readonly signal?: AbortSignal;
  /** An attempt that receives nothing for this long is aborted (and resumed by the next one). */
  readonly stallMs?: number;
  /** Attempts in all, each resuming where the last stopped. */
  readonly attempts?: number;
  /** The HTTP client (default: global fetch); the model download passes one with its redirect and token policy. */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Suffix of the file being written (default `.partial`). */
  readonly partialSuffix?: string;
  /** What the caller tells the user after a checksum mismatch and after an interruption. */
  readonly mismatchNote?: string;
  readonly retryNote?: string;
}

export class DownloadError extends Error {
  constructor(message: string, readonly kind: 'network' | 'integrity' | 'http' | 'cancelled') {
    super(message);
    this.name = 'DownloadError';
  }
}

/**
 * Downloads `url` to `dest` unless `dest` already holds it. Resumes a `.partial` left by an
 * earlier call for the same integrity; when a resumed file fails the check, it is thrown
 * away and downloaded once more from the start.
 * @throws DownloadError; the `.partial` stays for the next call unless its bytes were wrong.
 */
export async function download(url: string, dest: string, integrity: string, opts: DownloadOptions = {}): Promise<void> {
  const { algorithm, digest: expected } = parseIntegrity(integrity);
  const partial = `${dest}${opts.partialSuffix ?? '.partial'}`;
  const meta = `${partial}.json`;
  if (existsSync(dest) && (await fileDigest(dest, algorithm)) === expected) return;
  if (!existsSync(meta) || readFileSync(meta, 'utf8') !== JSON.stringify({ url, integrity })) rmSync(partial, { force: true });
  writeFileSync(meta, JSON.stringify({ url, integrity }));
  const attempts = opts.attempts ?? 3;
  let failures = 0;
  let cleanRetryDone = false;
  for (;;) {
    if (opts.signal?.aborted) throw new DownloadError('the download was cancelled', 'cancelled');
    const resumedFrom = existsSync(partial) ? statSync(partial).size : 0;
    try {
      const digest = await fetchInto(url, partial, resumedFrom, algorithm, opts);
      if (digest === expected) {
        renameSync(partial, dest);
        rmSync(meta, { force: true });
        return;
      }
      rmSync(partial, { force: true });
      // A resumed file can be wrong because its first part was (a changed file on the server): start over once.
      if (resumedFrom > 0 && !cleanRetryDone) {
        cleanRetryDone = true;
        continue;
      }
      rmSync(meta, { force: true }); // nothing of this file is left
      throw new DownloadError(`checksum mismatch: ${url} is not the file the registry describes (${algorithm} differs); ${opts.mismatchNote ?? 'nothing was installed'}`, 'integrity');
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      if (++failures >= attempts) {
        throw new DownloadError(`the download of ${url} was interrupted (${(e as Error).message}); ${opts.retryNote ?? 'run the install again to resume it'}`, 'network');
      }
    }
  }
}

/** Appends the rest of `url` after `offset` bytes to `partial`; returns the whole file's digest (base64). */
async function fetchInto(url: string, partial: string, offset: number, algorithm: Algorithm, opts: DownloadOptions): Promise<string> {
  const stall = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stall.signal]) : stall.signal;
  let timer = setTimeout(() => stall.abort(), opts.stallMs ?? 60_000);
  const touch = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(), opts.stallMs ?? 60_000);
  };
  try {
    let res: Response;
    try {
      res = await (opts.fetch ?? fetch)(url, { headers: { 'accept-encoding': 'identity', ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) }, signal });
    } catch (e) {
      throw cancelledOr(e, opts.signal);
    }
    if (res.status === 416 && offset > 0) {
      // The partial file already holds every byte (or more than there is): check what we have.
      return fileDigest(partial, algorithm);
    }
    if (!res.ok || !res.body) throw new DownloadError(`the registry answered ${res.status} for ${url}`, 'http');
    const resumed = res.status === 206 && offset > 0;
    const start = resumed ? offset : 0;
    const hash = createHash(algorithm);
    if (resumed) await hashFile(partial, hash);
    const length = Number(res.headers.get('content-length') ?? NaN);
    const total = Number.isFinite(length) ? start + length : undefined;
    const out = createWriteStream(partial, { flags: resumed ? 'a' : 'w' });
    let bytes = start;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        touch();
        hash.update(chunk);
        bytes += chunk.byteLength;
        if (!out.write(chunk)) await once(out, 'drain');
        opts.onProgress?.({ bytes, total, resumedFrom: start });
      }
    } catch (e) {
      throw cancelledOr(e, opts.signal);
    } finally {
      out.end();
      await once(out, 'close');
    }
    if (total !== undefined && bytes !== total) throw new Error(`the connection closed after ${bytes} of ${total} bytes`);
    return hash.digest('base64');
  } finally {
    clearTimeout(timer);
  }
}

function cancelledOr(e: unknown, signal: AbortSignal | undefined): Error {
  if (signal?.aborted) return new DownloadError('the download was cancelled', 'cancelled');
  const err = e as Error & { cause?: Error };
  return new Error(err.cause?.message ?? err.message);
}

type Algorithm = 'sha512' | 'sha256';

/** The algorithm and base64 digest of an SRI string `sha512-<base64>` or `sha256-<base64>`. */
function parseIntegrity(integrity: string): { algorithm: Algorithm; digest: string } {
  const m = /^(sha512|sha256)-([A-Za-z0-9+/=]+)$/.exec(integrity.trim());
  if (!m) throw new DownloadError(`unsupported integrity ${integrity} (sha512 or sha256 expected)`, 'integrity');
  return { algorithm: m[1] as Algorithm, digest: m[2] };
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

async function fileDigest(path: string, algorithm: Algorithm): Promise<string> {
  const hash = createHash(algorithm);
  await hashFile(path, hash);
  return hash.digest('base64');
}
