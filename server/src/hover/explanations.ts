/**
 * Explanations of images (the hover's text), by image content: the SHA-256 of the
 * file bytes. Kept in memory and, with a cache directory, in `explanations.json`
 * there, so they survive restarts. The file records the recipe (model, question,
 * token budget) its explanations were made with; a file of another recipe is
 * ignored and replaced on the next write.
 *
 * Invariant: at most one computation runs per key; concurrent callers share it.
 * Invariant: the file is replaced atomically (temp file + rename); writes run one at a time.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRegularText } from '../engine/regular-file';

export interface Explanation {
  text: string;
  /** Of the run that made it. */
  ttftMs: number;
  /** That run reused cached encoder output, image KV or a prefix. */
  cacheHit: boolean;
  /** The image's own size. */
  width: number;
  height: number;
  /** Date.now() when it was made. */
  atMs: number;
}

export const EXPLANATIONS_FILE = 'explanations.json';
const FILE_VERSION = 1;
/** Oldest entries go first beyond this many (a few hundred bytes each). */
const MAX_ENTRIES = 2000;

interface FileContents {
  version: number;
  recipe: string;
  entries: Record<string, Explanation>;
}

export class Explanations {
  /** In insertion order, oldest first. */
  private readonly ready = new Map<string, Explanation>();
  private readonly running = new Map<string, Promise<Explanation>>();
  private writes: Promise<void> = Promise.resolve();

  /**
   * @param dir The cache directory; undefined: memory only.
   * @param recipe What the explanations depend on besides the image (model, question, token budget).
   */
  constructor(private readonly dir: string | undefined, private readonly recipe: string, private readonly log: (m: string) => void) {
    if (dir) this.load(join(dir, EXPLANATIONS_FILE));
  }

  get(key: string): Explanation | undefined {
    return this.ready.get(key);
  }

  /** Whether a computation for `key` is under way. */
  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  /**
   * The explanation under `key`: the stored one, the running computation, or a new one
   * from `compute` (stored and persisted when it succeeds; a failure is not stored, so
   * the next call tries again).
   */
  ensure(key: string, compute: () => Promise<Explanation>): Promise<Explanation> {
    const done = this.ready.get(key);
    if (done) return Promise.resolve(done);
    let p = this.running.get(key);
    if (!p) {
      p = compute().then((e) => {
        this.ready.set(key, e);
        for (const old of this.ready.keys()) {
          if (this.ready.size <= MAX_ENTRIES) break;
          this.ready.delete(old);
        }
        this.persist();
        return e;
      }).finally(() => this.running.delete(key));
      this.running.set(key, p);
    }
    return p;
  }

  /** Forgets every stored explanation (running ones still finish and are stored) and removes the file. */
  clear(): void {
    this.ready.clear();
    if (this.dir) {
      const file = join(this.dir, EXPLANATIONS_FILE);
      this.writes = this.writes.then(() => unlink(file).catch(() => {}));
    }
  }

  /** Resolves when every queued write has landed (or failed, logged). Never rejects. */
  flush(): Promise<void> {
    return this.writes;
  }

  private load(file: string): void {
    let data: FileContents;
    try {
      // One regular file of sane size: a FIFO or device planted in the cache folder must not hang the daemon.
      data = JSON.parse(readRegularText(file, { maxBytes: 64 * 2 ** 20 })) as FileContents;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log(`explanations: ignoring ${file} (${(e as Error).message})`);
      return;
    }
    if (data?.version !== FILE_VERSION || data.recipe !== this.recipe || typeof data.entries !== 'object') return;
    const entries = Object.entries(data.entries ?? {})
      .filter(([, e]) => typeof e?.text === 'string' && typeof e.ttftMs === 'number' && typeof e.atMs === 'number')
      .sort(([, a], [, b]) => a.atMs - b.atMs);
    for (const [k, e] of entries.slice(-MAX_ENTRIES)) this.ready.set(k, e);
  }

  private persist(): void {
    if (!this.dir) return;
    const file = join(this.dir, EXPLANATIONS_FILE);
    this.writes = this.writes.then(async () => {
      const contents: FileContents = { version: FILE_VERSION, recipe: this.recipe, entries: Object.fromEntries(this.ready) };
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        await mkdir(this.dir!, { recursive: true });
        await writeFile(tmp, JSON.stringify(contents));
        await rename(tmp, file);
      } catch (e) {
        this.log(`explanations: cannot write ${file} (${(e as Error).message}); they are kept in memory only`);
        await unlink(tmp).catch(() => {});
      }
    });
  }
}
