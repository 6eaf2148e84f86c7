/**
 * Large resizes on several threads: the calling thread (an image worker, in the daemon) and up to
 * `size - 1` helper threads compute the bands of resize-bands.ts over one shared source and one
 * shared output. Bit-identical to resizeBicubic for any number of threads and bands.
 *
 * Protocol: the caller lays the job out in a shared WebAssembly memory (the taps and a copy of the
 * source; the memory is kept for the next job a while, KeptMemory), posts the job to every helper
 * (`{ kind: 'job', id, job, control }`), and computes bands itself; each thread instantiates the
 * kernels on the job's memory (resize-kernel.ts). Bands are claimed through
 * `control` ([NEXT, DONE], Int32 on a SharedArrayBuffer): `Atomics.add(NEXT)` hands out each band
 * once, whoever is free first; after a band, `DONE` is incremented and notified. The caller awaits
 * DONE = nBands (Atomics.waitAsync), so a helper that wakes late finds no band left and does
 * nothing, and the caller never waits for an idle helper. A helper that throws answers
 * `{ kind: 'error', id, message }`; one that dies fails the job it was in.
 *
 * Helpers run worker.ts with `workerData.role = 'resize-helper'` (resize-helper.ts), start on the
 * first parallel resize (or warm(): an image worker warms them when its first image arrives), stay
 * idle and unref'd between jobs (about 8 MiB of memory each), and end with the thread that started
 * them (an image worker that is terminated takes its helpers with it).
 */

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

import { type BandJob, type BicubicPasses, bicubicPasses, computeBand, copyOutput, layoutJob, planBands, prepareJob } from './resize-bands';
import { KeptMemory, kernelOn } from './resize-kernel';
import { isTallFirst, resizeBicubic, type ResizeSource, sourceChannels } from './resize';
import type { RgbImage } from './types';
import { imageWorkerScript } from './worker-script';

/** Indices in a job's control array. */
export const NEXT = 0;
export const DONE = 1;

/** What a helper receives. */
export interface HelperJobMessage {
  readonly kind: 'job';
  readonly id: number;
  readonly job: BandJob;
  /** [NEXT, DONE] on a SharedArrayBuffer. */
  readonly control: Int32Array;
}

/** What a helper answers, only when a band failed. */
export interface HelperErrorMessage {
  readonly kind: 'error';
  readonly id: number;
  readonly message: string;
}

/**
 * Below this many pixels (of the input and of the output) a resize stays on one thread. Measured on
 * the 2-core machine (2026-12-05, WebAssembly kernels, warm threads, RGBA shrunk by 0.9, medians of 31):
 * one thread / two: 0.81 / 0.99 ms at 0.20 MP, 1.30 / 1.20 at 0.35 MP, 2.47 / 2.09 at 0.70 MP, 5.99 / 3.78
 * at 1.4 MP; below ~0.4 MP the hand-over costs what a second thread saves.
 */
export const PARALLEL_MIN_PIXELS = 400_000;

/** Output rows per band at least: each band recomputes the intermediate rows its taps share with the band above. */
const MIN_BAND_ROWS = 32;
/** Bands per thread at most, so that a thread slowed by other work delays only a small band. */
const BANDS_PER_THREAD = 2;
/** Threads at most by default: beyond this the bands of a 4K screenshot get thin and memory bandwidth, not cores, bounds the time. */
const MAX_DEFAULT_THREADS = 16;

/** Limits of `resizeBicubicParallel`'s cut, for tests. */
export interface ParallelOptions {
  /** Cut into exactly this many bands (1 <= bands <= outHeight), and skip the size threshold. */
  readonly bands?: number;
  /** Write the result into the start of this buffer when it is large enough (pixel-buffers.ts). */
  readonly into?: ArrayBuffer;
}

/**
 * resizeBicubic, on the threads of `threads` for large images (see PARALLEL_MIN_PIXELS); the result
 * is a plain (not shared) buffer, as ONNX Runtime needs. Very tall images (Pillow's vertical-first
 * order, isTallFirst) stay on one thread.
 */
export async function resizeBicubicParallel(
  image: ResizeSource, outWidth: number, outHeight: number, threads: ResizeThreads = resizeThreads(), options: ParallelOptions = {},
): Promise<RgbImage> {
  if (options.bands === undefined ? threadsFor(image, outWidth, outHeight, threads) === 1 : !canCut(image, outWidth, outHeight, threads)) {
    return resizeBicubic(image, outWidth, outHeight, options.into);
  }
  const nBands = options.bands ?? Math.max(1, Math.min(threads.size * BANDS_PER_THREAD, Math.floor(outHeight / MIN_BAND_ROWS)));
  const passes = bicubicPasses(image.width, image.height, outWidth, outHeight);
  const data = await threads.resize(image.data, sourceChannels(image), passes, planBands(outHeight, nBands), options.into);
  return { width: outWidth, height: outHeight, data };
}

/** Threads resizeBicubicParallel computes this resize on: 1 when it stays on the calling thread. */
export function threadsFor(image: ResizeSource, outWidth: number, outHeight: number, threads: ResizeThreads = resizeThreads()): number {
  const small = Math.max(image.width * image.height, outWidth * outHeight) < PARALLEL_MIN_PIXELS;
  return small || !canCut(image, outWidth, outHeight, threads) ? 1 : threads.size;
}

/** Whether a resize can go to the threads at all: not for very tall images, nor for a plain copy. */
function canCut(image: ResizeSource, outWidth: number, outHeight: number, threads: ResizeThreads): boolean {
  const copyOnly = image.width === outWidth && image.height === outHeight && sourceChannels(image) === 3;
  return threads.size > 1 && !copyOnly && !isTallFirst(image.width, image.height, outHeight);
}

interface Running {
  readonly id: number;
  readonly control: Int32Array;
  fail(error: Error): void;
}

/** The calling thread and its resize helpers. */
export class ResizeThreads {
  private readonly helpers: Worker[] = [];
  private running: Running | undefined;
  /** Settles when the last job handed to resize() has finished: jobs run one after another. */
  private tail: Promise<void> = Promise.resolve();
  private readonly memory = new KeptMemory();
  private nextId = 1;

  /** Ends the helpers after `idleMs` without a job. */
  private idleTimer: NodeJS.Timeout | undefined;

  /**
   * @param size threads that compute bands, the calling thread included (1: no helpers).
   * @param idleMs the helpers end after this long without a job (each holds ~8 MiB; up to 15 of them
   *   would otherwise stay for the daemon's life) and start again with the next image (`warm`).
   */
  constructor(readonly size: number, private readonly idleMs = HELPERS_IDLE_MS) {
    if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`invalid resize thread count ${size}`);
  }

  /** Starts the helpers now, so that their start overlaps other work instead of the first large resize. */
  warm(): void {
    this.endIdleLater();
    while (this.helpers.length < this.size - 1) this.spawn();
  }

  /** (Re)starts the idle countdown after which the helpers end; not while a job runs. */
  private endIdleLater(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.running) this.endIdleLater();
      else void Promise.all(this.helpers.splice(0).map((h) => h.terminate()));
    }, this.idleMs);
    this.idleTimer.unref();
  }

  /** Helper threads running now. */
  get helperCount(): number {
    return this.helpers.length;
  }

  /**
   * The resized image ([outHeight, outWidth, 3], a plain buffer: the start of `into` when it is large
   * enough, else a new one): `src` ([inHeight, inWidth, channels])
   * is copied into shared memory, cut into `bands` and computed here and on the helpers. Calls made
   * while one runs (several images preprocessed at once on one thread) wait for it.
   * @throws Error when a helper fails or dies meanwhile.
   */
  resize(src: Uint8Array, channels: 3 | 4, passes: BicubicPasses, bands: Int32Array, into?: ArrayBuffer): Promise<Uint8Array> {
    const result = this.tail.then(async () => {
      const layout = layoutJob(passes, channels, bands.length / 2);
      const job = prepareJob(this.memory.take(layout.bytes), layout, passes, channels, bands, src);
      await this.runNow(job);
      return copyOutput(job, into);
    });
    this.tail = result.then(() => this.memory.releaseLater(), () => this.memory.releaseLater());
    return result;
  }

  private async runNow(job: BandJob): Promise<void> {
    this.warm();
    const nBands = job.bands.length / 2;
    const control = new Int32Array(new SharedArrayBuffer(8));
    const id = this.nextId++;
    let failed: Error | undefined;
    let wake: () => void = () => undefined;
    const failure = new Promise<void>((resolve) => { wake = resolve; });
    this.running = { id, control, fail: (e) => { failed ??= e; wake(); } };
    try {
      // Ref'd while the job runs: the caller's event loop must wait for them, not exit.
      for (const h of this.helpers) {
        h.ref();
        h.postMessage({ kind: 'job', id, job, control } satisfies HelperJobMessage);
      }
      const kernel = kernelOn(job.memory);
      for (let b = Atomics.add(control, NEXT, 1); b < nBands; b = Atomics.add(control, NEXT, 1)) {
        computeBand(job, b, kernel);
        Atomics.add(control, DONE, 1);
      }
      for (let done = Atomics.load(control, DONE); done < nBands && failed === undefined; done = Atomics.load(control, DONE)) {
        const w = waitAsync(control, DONE, done);
        if (w.async) await Promise.race([w.value, failure]);
      }
      if (failed !== undefined) throw failed;
    } finally {
      this.running = undefined;
      for (const h of this.helpers) h.unref();
      this.endIdleLater();
    }
  }

  /** Ends the helpers. */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.memory.release();
    await Promise.all(this.helpers.splice(0).map((h) => h.terminate()));
  }

  private spawn(): void {
    // Helpers hold no images of their own (typed arrays live outside the JS heap): a small heap.
    const worker = new Worker(imageWorkerScript(), {
      execArgv: [], workerData: { role: 'resize-helper' }, resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
    });
    worker.on('message', (msg: HelperErrorMessage) => {
      if (msg.kind === 'error' && this.running?.id === msg.id) this.running.fail(new Error(`a resize helper failed: ${msg.message}`));
    });
    const onDeath = (cause: Error | number) => {
      const i = this.helpers.indexOf(worker);
      // Not one of ours any more: ended when idle or by close(), which took it out first.
      if (i < 0) return;
      this.helpers.splice(i, 1);
      const detail = typeof cause === 'number' ? `exit code ${cause}` : cause.message;
      this.running?.fail(new Error(`a resize helper stopped (${detail})`));
    };
    worker.on('error', onDeath);
    worker.on('exit', onDeath);
    worker.unref();
    this.helpers.push(worker);
  }
}

/** Resize helpers end after this long without a job (a new image starts them again, overlapping its decoding). */
const HELPERS_IDLE_MS = 60_000;

/** Atomics.waitAsync (Node >= 16; not in the ES2022 lib this project compiles against). */
function waitAsync(array: Int32Array, index: number, value: number):
  { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> } {
  return (Atomics as unknown as { waitAsync: typeof waitAsync }).waitAsync(array, index, value);
}

let shared: ResizeThreads | undefined;

/** This thread's resize threads: one per core, at most MAX_DEFAULT_THREADS; started on first use. */
export function resizeThreads(): ResizeThreads {
  shared ??= new ResizeThreads(Math.max(1, Math.min(MAX_DEFAULT_THREADS, availableParallelism())));
  return shared;
}
