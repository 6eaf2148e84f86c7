/**
 * What the hover and `vlcache/explain` share: an image's thumbnail and its short
 * explanation, keyed by the SHA-256 of the bytes read when it was asked for (the
 * explanation is about those bytes, even if the file changes while it is computed).
 */
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { ImageInput } from '../ask/generate';
import type { Explanation, Explanations } from './explanations';
import { makeThumbnail, type Thumbnail } from './thumbnail';

/** The token budget of an explanation (its question is the protocol's EXPLAIN_QUESTION). */
export const EXPLAIN_MAX_TOKENS = 64;

/** Thumbnails kept in memory (a few KB each), most recent last. */
const MAX_THUMBNAILS = 64;

export interface ExplainTarget {
  /** The image's file URI. */
  uri: string;
  /** SHA-256 of its bytes. */
  key: string;
  thumbnail: Thumbnail;
  /** Set when the explanation was already made. */
  ready?: Explanation;
  /** The explanation; computed once per key, in the background, whoever waits for it. */
  done: Promise<Explanation>;
}

export interface ExplainerParams {
  explanations: Explanations;
  /** Runs the model on one image (the server queues it at background priority). */
  run: (image: ImageInput) => Promise<Explanation>;
  /** Called once per finished computation, after the explanation is stored. */
  onExplained: (uri: string, e: Explanation) => void;
  log: (m: string) => void;
}

export class Explainer {
  private readonly thumbnails = new Map<string, Thumbnail>();

  constructor(private readonly p: ExplainerParams) {}

  get explanations(): Explanations {
    return this.p.explanations;
  }

  /** The key of an image: the SHA-256 of its bytes. */
  keyOf(bytes: Uint8Array): string {
    return createHash('sha256').update(bytes).digest('hex');
  }

  /**
   * Makes the thumbnail and starts the explanation unless it is stored or running.
   * `image.name` is the absolute path.
   * @throws ImageError when the bytes are not an image we decode (nothing is started).
   */
  async start(image: ImageInput): Promise<ExplainTarget> {
    const key = this.keyOf(image.bytes);
    const thumbnail = await this.thumbnail(key, image);
    const uri = pathToFileURL(image.name).href;
    const ready = this.p.explanations.get(key);
    if (ready) return { uri, key, thumbnail, ready, done: Promise.resolve(ready) };
    return { uri, key, thumbnail, done: this.explain(key, image) };
  }

  /** The explanation of `image` (whose key is `key`): stored, running, or started now in the background. */
  explain(key: string, image: ImageInput): Promise<Explanation> {
    const ready = this.p.explanations.get(key);
    if (ready) return Promise.resolve(ready);
    const starts = !this.p.explanations.isRunning(key);
    const done = this.p.explanations.ensure(key, () => this.p.run(image));
    if (starts) {
      const uri = pathToFileURL(image.name).href;
      done.then((e) => this.p.onExplained(uri, e),
        (err) => this.p.log(`explaining ${image.name} failed: ${(err as Error)?.message ?? String(err)}`));
    }
    return done;
  }

  /**
   * Starts the explanation `ms` from now, unless it is stored or running by then. The hover's way:
   * loading a model blocks the daemon's event loop (onnxruntime-node creates sessions
   * synchronously), so the hover answers first and the model work begins after its answer was
   * written to the client. Failures are logged (explain's handler).
   */
  explainLater(key: string, image: ImageInput, ms: number): void {
    if (this.p.explanations.get(key) || this.p.explanations.isRunning(key)) return;
    setTimeout(() => void this.explain(key, image).catch(() => undefined), ms);
  }

  /** Made in an image worker (hover/thumbnail.ts), so a large file never blocks the daemon; kept per key. */
  async thumbnail(key: string, image: ImageInput): Promise<Thumbnail> {
    let t = this.thumbnails.get(key);
    if (t) {
      this.thumbnails.delete(key);
    } else {
      t = await makeThumbnail(image.bytes, image.name);
      if (this.thumbnails.size >= MAX_THUMBNAILS) this.thumbnails.delete(this.thumbnails.keys().next().value!);
    }
    this.thumbnails.set(key, t);
    return t;
  }
}

/**
 * `p`'s value, or `undefined` when `ms` pass first or `signal` aborts (the caller tells
 * the two apart by `signal.aborted`). `p` itself is never cancelled. Rejects when `p` does.
 */
export function within<T>(p: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | undefined> {
  if (signal?.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    let settled = false;
    const stop = () => finish(() => resolve(undefined));
    const timer = Number.isFinite(ms) ? setTimeout(stop, ms) : undefined;
    signal?.addEventListener('abort', stop, { once: true });
    function finish(f: () => void) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
      f();
    }
    p.then((v) => finish(() => resolve(v)), (e) => finish(() => reject(e)));
  });
}
