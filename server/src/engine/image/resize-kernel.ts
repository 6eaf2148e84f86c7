/**
 * The resize's inner loops: kernels/wasm/resize.wat (WebAssembly SIMD, Pillow's fixed-point arithmetic),
 * compiled once per thread and instantiated on each job's memory. The only file that touches WebAssembly.
 *
 * Why WebAssembly: the same loops in JavaScript ran at about one multiply-add per nanosecond; 128-bit SIMD
 * does four lanes at once (a 3840x2160 RGBA screenshot -> 3836x2156 on one thread of the 2-core test machine:
 * 190 ms of CPU in JavaScript, 40 ms here, byte-identical; README "Resize in WebAssembly SIMD"). No library
 * on the npm registry resizes exactly as Pillow does (sharp's libvips kernels round differently), and Hugging
 * Face's processor is Pillow.
 *
 * A job's memory is a shared WebAssembly.Memory: the calling thread and the resize helpers
 * (resize-threads.ts) each instantiate the module on it and compute their own bands of one output.
 */

import { RESIZE_WASM_BASE64 } from '../../../../kernels/wasm/resize-wasm';

/** A shared WebAssembly memory: its bytes are a SharedArrayBuffer, postable to other threads. */
export interface JobMemory {
  readonly buffer: SharedArrayBuffer;
}

/** The parts of the WebAssembly API used here (Node has had them since 16; the ES2022 lib this project compiles against declares none). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum: number; shared: true }) => JobMemory;
}
const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** The exported functions of resize.wat; every pointer is a byte offset into the job's memory. */
export interface ResizeKernel {
  readonly memory: JobMemory;
  /**
   * Horizontal pass over one row: outWidth RGB pixels at `dst` from pixels of `pixelBytes` (3 or 4) bytes at
   * `src`; pixel xx reads nTaps pixels from src + starts[xx] * pixelBytes, weights [xx * nTaps, (xx + 1) * nTaps)
   * (int32). Reads up to 8 bytes past a source pixel; writes exactly the row. Precondition: nTaps >= 1.
   */
  hrow(src: number, pixelBytes: number, starts: number, weights: number, nTaps: number, dst: number, outWidth: number): void;
  /**
   * Vertical pass over one output row of `length` bytes at `dst`: from the rows whose offsets are the int32s at
   * ptrs[0 .. nTaps), with the int32 weights at weights[0 .. nTaps). Writes exactly the row. Precondition: nTaps >= 1.
   */
  vrow(ptrs: number, weights: number, nTaps: number, dst: number, length: number): void;
}

/** WebAssembly pages are 64 KiB. */
const PAGE_BYTES = 65536;
/** The most a 32-bit memory can hold (resize.wat's import allows every page). */
export const MAX_JOB_BYTES = 65536 * PAGE_BYTES;

let compiled: object | undefined;

/**
 * The kernels instantiated on `memory`. Not cached: an instance holds its memory, which must go when its job's
 * owner lets it go (KeptMemory); instantiating the small module takes microseconds, once per job and thread.
 */
export function kernelOn(memory: JobMemory): ResizeKernel {
  compiled ??= new wasm.Module(Buffer.from(RESIZE_WASM_BASE64, 'base64'));
  const exports = new wasm.Instance(compiled, { env: { memory } }).exports as unknown as Omit<ResizeKernel, 'memory'>;
  return { memory, hrow: exports.hrow, vrow: exports.vrow };
}

/**
 * A shared memory of at least `bytes` bytes, zero-filled.
 * @throws RangeError when `bytes` is beyond a 32-bit memory, or the system refuses the memory.
 */
export function jobMemory(bytes: number): JobMemory {
  if (bytes > MAX_JOB_BYTES) throw new RangeError(`a resize needs ${bytes} bytes of working memory, more than ${MAX_JOB_BYTES}`);
  const pages = Math.max(1, Math.ceil(bytes / PAGE_BYTES));
  return new wasm.Memory({ initial: pages, maximum: pages, shared: true });
}

/**
 * One job memory kept for the next job a while: first touching fresh memory costs about 10 µs per 4 KiB page on
 * the machines measured (a 4K screenshot's job: ~60 MB, ~150 ms), far more than the resize. The kept memory is
 * reused by every job it fits; a new one is made a power of two of at least MIN_BYTES large, so that images of
 * varying sizes make few memories (each reserves address space until the garbage collector frees it). None above
 * MAX_KEPT_BYTES is kept, and the kept one is dropped after IDLE_MS without a job, so an idle daemon holds none.
 */
export class KeptMemory {
  private kept: JobMemory | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** A memory of at least `bytes` bytes (contents undefined); call releaseLater() once the job is done. */
  take(bytes: number): JobMemory {
    clearTimeout(this.timer);
    const m = this.kept;
    if (m !== undefined && m.buffer.byteLength >= bytes) return m;
    const rounded = Math.max(MIN_BYTES, 2 ** Math.ceil(Math.log2(bytes)));
    const fresh = jobMemory(rounded <= MAX_KEPT_BYTES ? rounded : bytes);
    this.kept = rounded <= MAX_KEPT_BYTES ? fresh : undefined;
    return fresh;
  }

  releaseLater(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.release(), IDLE_MS);
    this.timer.unref();
  }

  release(): void {
    clearTimeout(this.timer);
    this.kept = undefined;
  }
}

/** Smallest job memory made: small images (thumbnails, icons) share one. */
const MIN_BYTES = 2 ** 20;
/** Largest job memory kept between jobs: a 5120x2880 RGBA screenshot's (59 MB source, 44 MB output). */
const MAX_KEPT_BYTES = 128 * 2 ** 20;
const IDLE_MS = 30_000;
