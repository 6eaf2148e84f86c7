/**
 * Plain buffers for resized pixels, reused between images. A fresh buffer costs its page faults when
 * first written: on the machines measured (a VM here, ~10 µs per 4 KiB page) a 3836x2156 RGB result
 * (25 MB) took 70-88 ms to copy into a fresh buffer and 2 ms into one already touched, more than the
 * multi-threaded resize itself. The image worker pool hands a kept buffer to the worker with each
 * preprocess task (transferred, so the same memory), the worker writes the pixels into it when they
 * fit, and the caller gives the buffer back once the vision encoder has read it (`recycle`).
 * Kept buffers are dropped after IDLE_MS without use, so an idle daemon holds none.
 */

/** Buffers kept at most (one per image in flight is plenty: images are encoded one at a time). */
const MAX_KEPT = 2;
/** Largest buffer kept: a 5120x2880 RGB image (44 MB) fits. */
export const MAX_KEPT_BYTES = 64 * 2 ** 20;
const IDLE_MS = 30_000;

export class PixelBuffers {
  private readonly kept: ArrayBuffer[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** The largest kept buffer, no longer kept (its owner transfers or gives it back), or undefined. */
  take(): ArrayBuffer | undefined {
    if (this.kept.length === 0) return undefined;
    this.kept.sort((a, b) => a.byteLength - b.byteLength);
    return this.kept.pop();
  }

  /**
   * Keeps `buffer` for a later image. The caller must hold no view of it that it still reads: the next
   * task detaches it. Detached, shared, oversized or surplus buffers are not kept.
   */
  give(buffer: ArrayBufferLike): void {
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0 || buffer.byteLength > MAX_KEPT_BYTES) return;
    if (this.kept.includes(buffer)) return;
    this.kept.push(buffer);
    if (this.kept.length > MAX_KEPT) {
      this.kept.sort((a, b) => a.byteLength - b.byteLength);
      this.kept.shift(); // the smallest goes
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.clear(), IDLE_MS);
    this.timer.unref();
  }

  /** Buffers kept now. */
  get size(): number {
    return this.kept.length;
  }

  clear(): void {
    clearTimeout(this.timer);
    this.kept.length = 0;
  }
}
