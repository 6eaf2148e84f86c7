/**
 * Image work off the main thread: decoding, preprocessing and thumbnails run in worker threads
 * (worker.ts) with a heap cap and a time budget, so that a hostile or huge file can neither block
 * the daemon's event loop (`vlcache/stats`, hovers, cancellation keep being answered) nor run
 * forever: past its budget the worker is terminated and the caller gets ImageError 'timeout'.
 *
 * Memory: `resourceLimits` caps the worker's JavaScript heap (a decoder's own objects); pixel
 * buffers live outside that heap and are bounded instead by the byte budget decode.ts checks on
 * the declared sizes before anything is allocated. A worker that dies anyway (out of heap) fails
 * its task with ImageError 'too-large' and is replaced for the next one.
 * Output: worker.ts sends its stdout to stderr, so no decoder can write into the CLI's `--json`
 * output or the LSP stream. (Reading `worker.stdout` here instead kept the process alive.)
 */

import { Worker } from 'node:worker_threads';

import type { PreprocessConfig } from '../config';
import type { DecodedImage, DecodeOptions } from './decode';
import { DEFAULT_IMAGE_LABEL, ImageError, type ImageErrorCode } from './errors';
import type { PreprocessedImage, PreprocessOptions } from './preprocess';
import { PixelBuffers } from './pixel-buffers';
import type { Thumbnail } from './thumbnail';
import type { RgbImage } from './types';
import type { WorkerRequest, WorkerResponse } from './worker';
import { imageWorkerScript } from './worker-script';

/** Limits of one pool's workers. */
export interface IsolationLimits {
  /** Time budget of one task, ms. */
  readonly timeoutMs: number;
  /** Cap on a worker's JavaScript old-generation heap, MiB. */
  readonly maxHeapMb: number;
  /** Workers that run tasks at the same time. */
  readonly workers: number;
}

export const DEFAULT_LIMITS: IsolationLimits = { timeoutMs: 30_000, maxHeapMb: 512, workers: 2 };

/** The task part of a request; the pool adds the id. */
type Task = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

interface Job {
  readonly id: number;
  readonly task: Task;
  readonly label: string;
  readonly timeoutMs: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Slot {
  readonly worker: Worker;
  job?: Job;
  timer?: NodeJS.Timeout;
}

export class ImageWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  /** Buffers for resized pixels, handed to preprocess tasks (pixel-buffers.ts). */
  private readonly pixels = new PixelBuffers();
  private nextId = 1;
  private closed = false;

  constructor(readonly limits: IsolationLimits = DEFAULT_LIMITS) {
    if (!(limits.workers >= 1 && limits.timeoutMs > 0 && limits.maxHeapMb > 0)) {
      throw new RangeError(`invalid image worker limits ${JSON.stringify(limits)}`);
    }
  }

  /** decodeImage in a worker. */
  decode(bytes: Uint8Array, options: DecodeOptions = {}, timeoutMs?: number): Promise<DecodedImage> {
    return this.run({ task: 'decode', bytes, options }, options.name, timeoutMs) as Promise<DecodedImage>;
  }

  /**
   * preprocessImage in a worker. The pixels come back in a kept buffer when one is large enough
   * (pixel-buffers.ts): give it back with `recycle` once they have been read.
   */
  async preprocess(bytes: Uint8Array, cfg: PreprocessConfig, options: PreprocessOptions = {}, timeoutMs?: number): Promise<PreprocessedImage> {
    const into = this.pixels.take();
    const got = await this.run({ task: 'preprocess', bytes, cfg, options, into }, options.name, timeoutMs) as PreprocessedImage & { spare?: ArrayBuffer };
    const { spare, ...image } = got;
    if (spare !== undefined) this.pixels.give(spare);
    return image;
  }

  /**
   * Keeps the buffer of preprocessed pixels for the next image (no more page faults for its memory).
   * Precondition: nothing reads `pixels` afterwards; the next preprocess task detaches its buffer.
   */
  recycle(pixels: RgbImage): void {
    this.pixels.give(pixels.data.buffer);
  }

  /** renderThumbnail in a worker. */
  thumbnail(bytes: Uint8Array, name: string, side?: number, timeoutMs?: number): Promise<Thumbnail> {
    return this.run({ task: 'thumbnail', bytes, name, side }, name, timeoutMs) as Promise<Thumbnail>;
  }

  /**
   * Starts one worker now, if none runs, so that its start (a thread, the decoders, sharp's native library: ~100 ms)
   * overlaps something else, such as loading the model, instead of the first image's time to first token.
   */
  warm(): void {
    if (!this.closed && this.slots.length === 0) this.spawn();
  }

  /** Workers running now, busy or idle. */
  get workerCount(): number {
    return this.slots.length;
  }

  /** Terminates every worker; queued and running tasks fail. */
  async close(): Promise<void> {
    this.closed = true;
    this.pixels.clear();
    for (const job of this.queue.splice(0)) job.reject(new Error('the image worker pool was closed'));
    await Promise.all([...this.slots].map((s) => this.retire(s, new Error('the image worker pool was closed'))));
  }

  private run(task: Task, name: string | undefined, timeoutMs = this.limits.timeoutMs): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the image worker pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, task, label: name ?? DEFAULT_IMAGE_LABEL, timeoutMs, resolve, reject });
      this.pump();
    });
  }

  /** Hands queued jobs to idle workers, starting workers up to the limit. */
  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.job === undefined);
      if (slot === undefined) {
        if (this.slots.length >= this.limits.workers) return;
        slot = this.spawn();
      }
      this.dispatch(slot, this.queue.shift()!);
    }
  }

  private dispatch(slot: Slot, job: Job): void {
    slot.job = job;
    // An idle worker is unref'd so that the pool never keeps the process alive; a busy one is ref'd
    // so that the process waits for the answer (the timer alone would not do: tests mock timers).
    slot.worker.ref();
    slot.timer = setTimeout(() => {
      const seconds = (job.timeoutMs / 1000).toFixed(job.timeoutMs < 1000 ? 1 : 0);
      void this.retire(slot, imageError('timeout', job.label,
        `${job.label} took more than ${seconds} s to decode and was stopped; it may be a decompression bomb. ` +
        'Downscale the image or save it again in a common format (PNG or JPEG) and try again.'));
    }, job.timeoutMs);
    // A kept pixel buffer goes to the worker (transferred: the same memory, detached here).
    const into = job.task.task === 'preprocess' ? job.task.into : undefined;
    slot.worker.postMessage({ id: job.id, ...job.task } as WorkerRequest, into ? [into] : []);
  }

  private spawn(): Slot {
    const worker = startWorker(this.limits.maxHeapMb);
    const slot: Slot = { worker };
    worker.on('message', (msg: WorkerResponse) => {
      const job = slot.job;
      if (job === undefined || msg.id !== job.id) return;
      clearTimeout(slot.timer);
      slot.job = undefined;
      worker.unref();
      if (msg.ok) job.resolve(msg.value);
      else job.reject(msg.error.code !== undefined
        ? new ImageError(msg.error.code as ImageErrorCode, msg.error.message, msg.error.source)
        : Object.assign(new Error(msg.error.message), { name: msg.error.name }));
      this.pump();
    });
    const onDeath = (cause: Error | number) => {
      const job = slot.job;
      const detail = typeof cause === 'number' ? `exit code ${cause}` : cause.message;
      const outOfMemory = typeof cause !== 'number' && (cause as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
      void this.retire(slot, job === undefined ? undefined : outOfMemory
        ? imageError('too-large', job.label, `${job.label} needs more memory to decode than an image worker may use ` +
          `(${this.limits.maxHeapMb} MiB); it may be a decompression bomb. Downscale the image and try again.`)
        : new Error(`decoding ${job.label} stopped the image worker (${detail})`));
    };
    worker.on('error', onDeath);
    worker.on('exit', onDeath);
    // After the listeners: adding a 'message' listener refs the worker's port again.
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  /** Terminates `slot`'s worker, fails its job with `error`, and lets queued jobs go on. */
  private async retire(slot: Slot, error: Error | undefined): Promise<void> {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = undefined;
    if (job !== undefined) job.reject(error ?? new Error(`the image worker stopped while decoding ${job.label}`));
    this.pump();
    await slot.worker.terminate();
  }
}

function imageError(code: ImageErrorCode, label: string, message: string): ImageError {
  return new ImageError(code, message, label);
}

/** Starts worker.ts as an image worker (worker-script.ts finds the file). */
function startWorker(maxHeapMb: number): Worker {
  const resourceLimits = { maxOldGenerationSizeMb: maxHeapMb, maxYoungGenerationSizeMb: Math.min(64, maxHeapMb) };
  return new Worker(imageWorkerScript(), { resourceLimits, execArgv: [], workerData: { role: 'image' } });
}

let shared: ImageWorkerPool | undefined;

/** The process's image worker pool, started on first use. */
export function imageWorkers(): ImageWorkerPool {
  shared ??= new ImageWorkerPool();
  return shared;
}
