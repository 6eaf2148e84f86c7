/**
 * The only importer of onnxruntime-node: device selection, session creation,
 * tensors in and out. Everything else in the engine sees the small types below.
 */
import type * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Graph } from '../../../kernels/onnx/graph';
import { CapiSession, CapiTensor, cudaMemoryInUse, cudaProviderAvailable, loadRuntime, preloadCudaLibraries, type CapiDType, type CapiOutput } from './ort-capi';

// NOTE: requiring onnxruntime-node loads libonnxruntime; loadRuntime() must come first, so that an
// installed CUDA provider is found beside the runtime (see ort-capi.ts).
export const runtime = loadRuntime();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ortLib = require('onnxruntime-node') as typeof ort;

export type Device = 'cpu' | 'webgpu' | 'cuda';
export type DeviceRequest = Device | 'auto';
/**
 * A tensor on the CUDA device: an OrtValue held through the C-API seam (ort-capi.ts); the CPU
 * provider holds one in host memory when the native path is forced for tests. Opaque above this file: bind it to another run, read it with `hostBytes` / `toFloat32`, `dispose` it.
 */
export class DeviceTensor {
  /** Held as an OrtValue through the C API (its memory is `value.location`: the GPU, or the host in tests). */
  readonly location = 'ort-value' as const;
  constructor(readonly value: CapiTensor) {}
  get type(): CapiDType {
    return this.value.dtype;
  }
  get dims(): readonly number[] {
    return this.value.dims;
  }
  /** Device memory has no host view; reading it is a download (`hostBytes`). */
  get data(): never {
    throw new Error(`a CUDA tensor [${this.dims.join(', ')}] has no host data: read it with hostBytes or toFloat32`);
  }
  /** Overwrites its contents with host data of the same byte size (CUDA: one cudaMemcpy, no run). */
  upload(src: ArrayBufferView): void {
    this.value.upload(src);
  }
  /** Its bytes on the host (CUDA: one cudaMemcpy). */
  download(): Uint8Array {
    return this.value.download();
  }
  dispose(): void {
    this.value.release();
  }
}

/** A host tensor (onnxruntime-node's), a WebGPU buffer tensor (also onnxruntime-node's), or a CUDA tensor. */
export type Tensor = ort.Tensor | DeviceTensor;
export type Feeds = Record<string, Tensor>;

export class DeviceError extends Error {
  constructor(message: string, readonly device: Device) {
    super(message);
    this.name = 'DeviceError';
  }
}

/**
 * A run could not allocate the memory it needed (ONNX Runtime's arena, cudaMalloc, Dawn). The model and its
 * sessions stay usable: what the run allocated is freed, a KV arena that failed to grow keeps its old buffers.
 */
export class DeviceMemoryError extends Error {
  override readonly name = 'DeviceMemoryError';
  constructor(readonly device: Device, readonly graph: string, readonly requestedBytes?: number) {
    const mem = device === 'cpu' ? 'memory' : `${device === 'cuda' ? 'GPU' : 'WebGPU device'} memory`;
    const size = requestedBytes === undefined ? '' : ` (${(requestedBytes / 2 ** 20).toFixed(0)} MiB more were asked for)`;
    super(`The ${device} device ran out of ${mem} running ${graph}${size}. Ask about fewer or smaller images ` +
      '(vlcache.maxImagePixels), lower vlcache.gpu.kvArenaRows, close other programs that use the GPU, or set vlcache.device to cpu.');
  }
}

/** What a graph file (`vlcache-<graph>-<dtype>-<hash>.onnx`) computes, in a user's words. */
function graphLabel(file: string): string {
  const g = /^vlcache-(.+)-float(?:16|32)-[0-9a-f]+\.onnx$/.exec(file)?.[1] ?? file;
  if (g.startsWith('vision')) return 'the vision encoder';
  if (g.startsWith('llm')) return 'the language model';
  if (g === 'decode-arena') return 'a decode step on the KV arena';
  if (g.startsWith('arena')) return 'the KV arena (filling or growing it)';
  return `the graph ${g}`;
}

/** ONNX Runtime's own wording for an allocation failure, on each provider. */
const OUT_OF_MEMORY = /Failed to allocate memory|out of memory|OutOfMemory|bad_alloc/i;

/** The error a run threw, as a DeviceMemoryError when it is an allocation failure. */
export function classifyRunError(e: unknown, device: Device, graph: string): unknown {
  const msg = (e as Error)?.message ?? String(e);
  if (!OUT_OF_MEMORY.test(msg)) return e;
  const size = /requested buffer of size (\d+)/.exec(msg);
  return new DeviceMemoryError(device, graph, size ? Number(size[1]) : undefined);
}

export function f32(data: Float32Array, dims: readonly number[]): Tensor {
  return new ortLib.Tensor('float32', data, dims);
}

export function u8(data: Uint8Array, dims: readonly number[]): Tensor {
  return new ortLib.Tensor('uint8', data, dims);
}

/** A float16 tensor from raw IEEE half bits. */
export function f16(bits: Uint16Array, dims: readonly number[]): Tensor {
  return new ortLib.Tensor('float16', bits, dims);
}

/**
 * The raw bytes of a 3-D float tensor on the host. A GPU tensor is copied out by a
 * one-node Identity session whose output lives on the CPU.
 * NOTE: onnxruntime-node 1.30 aborts the process ("terminate called after throwing an
 * instance of 'char const*'") when `getData()` downloads a WebGPU output tensor, so we
 * never call it on GPU tensors; a session copy uses ONNX Runtime's own device-to-host path.
 */
export async function hostBytes(t: Tensor): Promise<Uint8Array> {
  let data: Float32Array | Uint16Array;
  if (t instanceof DeviceTensor) {
    return t.download();
  } else if (t.location === 'cpu') {
    data = t.data as Float32Array | Uint16Array;
  } else {
    if (t.dims.length !== 3) throw new Error(`hostBytes: expected a 3-D tensor, got [${t.dims.join(', ')}]`);
    const s = await downloader(t.type as 'float32' | 'float16');
    data = (await s.run({ x: t })).y.data as Float32Array | Uint16Array;
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

const downloaders = new Map<string, Promise<ort.InferenceSession>>();

function downloader(dtype: 'float32' | 'float16'): Promise<ort.InferenceSession> {
  let s = downloaders.get(dtype);
  if (!s) {
    const g = new Graph(`download-${dtype}`);
    g.output(g.op('Identity', [g.input('x', dtype, ['a', 'b', 'c'])]), 'y', dtype, ['a', 'b', 'c']);
    s = ortLib.InferenceSession.create(g.toModel(), {
      executionProviders: [{ name: 'webgpu' } as ort.InferenceSession.ExecutionProviderConfig],
      graphOptimizationLevel: 'disabled', preferredOutputLocation: { y: 'cpu' }, logSeverityLevel: 3,
    });
    downloaders.set(dtype, s);
  }
  return s;
}

export function i32(data: readonly number[] | Int32Array, dims: readonly number[] = [data.length]): Tensor {
  return new ortLib.Tensor('int32', data instanceof Int32Array ? data : Int32Array.from(data), dims);
}

export function i64(data: readonly number[] | BigInt64Array, dims: readonly number[] = [data.length]): Tensor {
  const arr = data instanceof BigInt64Array ? data : BigInt64Array.from(data, (v) => BigInt(v));
  return new ortLib.Tensor('int64', arr, dims);
}

/** Zeros of the KV dtype ('float32' or 'float16'; float16 data is raw Uint16 bits). */
export function zeros(dtype: 'float32' | 'float16', dims: readonly number[]): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return dtype === 'float32' ? new ortLib.Tensor('float32', new Float32Array(n), dims) : new ortLib.Tensor('float16', new Uint16Array(n), dims);
}

/** Host copy of a tensor's data as float32 (downloads GPU tensors; converts float16). */
export async function toFloat32(t: Tensor): Promise<Float32Array> {
  const b = await hostBytes(t);
  if (t.type === 'float32') return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  if (t.type === 'float16') return f16ToF32(new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2));
  throw new Error(`tensor of type ${t.type} is not float`);
}

function f16ToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const x = h[i];
    const sign = x & 0x8000 ? -1 : 1;
    const exp = (x >> 10) & 0x1f;
    const frac = x & 0x3ff;
    out[i] = exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** The devices `req` allows, best first; `auto` skips WebGPU where Linux has no Vulkan loader. */
export function devicesToTry(req: DeviceRequest): { devices: Device[]; skipped: string[] } {
  if (req !== 'auto') return { devices: [req], skipped: [] };
  const devices: Device[] = [];
  const skipped: string[] = [];
  if (cudaProviderAvailable()) devices.push('cuda');
  else if (runtime.note) skipped.push(`cuda: ${runtime.note}`);
  if (process.platform === 'linux' && !vulkanLoaderPresent()) skipped.push('webgpu: no Vulkan loader (libvulkan.so.1) is installed');
  else devices.push('webgpu');
  devices.push('cpu');
  return { devices, skipped };
}

/** Whether the Vulkan loader that Dawn (ORT's WebGPU) needs on Linux can be found. */
function vulkanLoaderPresent(): boolean {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/local/lib'];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

/** One readable clause from ONNX Runtime's provider failure (which carries source paths and lambdas). */
function explainDeviceFailure(msg: string): string {
  if (/Failed to get a WebGPU adapter|No supported adapters/i.test(msg)) {
    return 'no GPU adapter was found (WebGPU needs Vulkan on Linux, Metal on macOS, D3D12 on Windows)';
  }
  if (/Failed to load shared library/.test(msg)) {
    return "a provider library did not load (ONNX Runtime's error line above names the library and the reason; `vlcache gpu doctor` checks what CUDA needs)";
  }
  const line = msg.split('\n')[0];
  const tail = line.split(/ was false\. |: (?=[A-Z])/).pop() ?? line;
  return tail.length < 300 ? tail : `${tail.slice(0, 300)}…`;
}

/**
 * Throws a DeviceError that says what to do when the CUDA provider cannot load: not
 * installed, or the driver / CUDA 13 libraries missing (which are then preloaded by path).
 */
function assertCudaUsable(): void {
  if (!cudaProviderAvailable()) {
    throw new DeviceError(`the CUDA provider is not installed${runtime.note ? ` (${runtime.note})` : ''}: run \`vlcache gpu install cuda\` ` +
      '(or the command "VLCache: Install CUDA Provider"), then restart the daemon', 'cuda');
  }
  const { missing } = preloadCudaLibraries();
  if (missing.includes('libcuda.so.1')) throw new DeviceError('no NVIDIA driver was found (libcuda.so.1); `vlcache gpu doctor` says what to install', 'cuda');
  if (missing.length) {
    throw new DeviceError(`CUDA 13 runtime libraries are missing: ${missing.join(', ')}; \`vlcache gpu doctor\` says how to get them`, 'cuda');
  }
}

/** Whether a CUDA session can be created here (`vlcache gpu doctor`'s last check): a one-node graph on the CUDA provider. */
export async function probeCuda(): Promise<{ loaded: boolean; error?: string }> {
  try {
    const g = new Graph('probe-cuda');
    g.output(g.op('Identity', [g.input('x', 'float32', ['n'])]), 'y', 'float32', ['n']);
    const s = await Session.create(g.toModel(), 'cuda');
    await s.dispose();
    return { loaded: true };
  } catch (e) {
    return { loaded: false, error: (e as Error).message };
  }
}

/**
 * The C-API door (prototype, not yet used by the engine): a session created through ONNX
 * Runtime's C API and run with IO binding over ORT-allocated tensors — what onnxruntime-node's
 * JS API cannot do for CUDA (provider options such as `enable_cuda_graph`, device tensors).
 */
export { CapiSession, CapiTensor, cudaMemoryInUse, type CapiDType };

export function createCapiSession(model: Uint8Array | string, device: 'cpu' | 'cuda', opts: { threads?: number; cuda?: Record<string, string> } = {}): CapiSession {
  if (device === 'cuda') return createCudaSession(model, opts.cuda);
  return CapiSession.create(model, { threads: opts.threads, config: SESSION_CONFIG });
}

/**
 * CUDA provider options of every session: device 0, otherwise ONNX Runtime's defaults. NOTE: the
 * memory arena keeps its default growth (next power of two). `kSameAsRequested` was tried to strand
 * less memory; with it the first H200 run (2026-12-05) decoded through the step graph at 11 tokens/s
 * where the JS path had done 17 — we suspect (not yet profiled) that every new shape, such as each
 * decode token's one-row-longer present K/V, then needed a fresh cudaMalloc.
 */
const CUDA_OPTIONS: Readonly<Record<string, string>> = { device_id: '0' };

/**
 * Session config entries of every session, on both doors. ONNX Runtime folds constant subgraphs at
 * load — the graphs rely on that to cast a checkpoint's bfloat16 weights to the compute dtype and
 * transpose them once — but skips a node whose output exceeds 1 GiB. The 151936-row embedding table
 * in float32 (Qwen2.5-VL-3B on the CPU: 1.24 GB; 7B's in float16: 1.09 GB) was then cast again on
 * every run: 110 ms of each CPU decode step, measured. The limit guards against hostile models;
 * these graphs are built here from the checkpoint's own weight shapes, so it is raised to 16 GiB.
 */
export const SESSION_CONFIG: Readonly<Record<string, string>> = {
  'optimization.constant_folding_max_output_size_in_bytes': String(16 * 2 ** 30),
};

function createCudaSession(model: Uint8Array | string, extra: Record<string, string> = {}): CapiSession {
  assertCudaUsable();
  return CapiSession.create(model, { cuda: { ...CUDA_OPTIONS, ...cudaOptionsFromEnv(), ...extra }, config: SESSION_CONFIG,
    // Not under capture: a captured graph replays without running the profiled nodes.
    profilePrefix: extra.enable_cuda_graph ? undefined : ortProfilePrefix(model) });
}

/**
 * VLCACHE_ORT_PROFILE=<folder>: sessions run with ONNX Runtime's profiler (both doors; not a captured
 * CUDA graph), one JSON file of per-node times per session in that folder, written when it is disposed
 * (test/device/ort-profile-summary.py sums them per operator and provider).
 */
function ortProfilePrefix(model: Uint8Array | string): string | undefined {
  const dir = process.env.VLCACHE_ORT_PROFILE;
  if (!dir) return undefined;
  const name = typeof model === 'string' ? model.split('/').pop()!.replace(/\.onnx$/, '') : 'graph';
  return `${dir}/${name}`;
}

/** VLCACHE_CUDA_OPTIONS="key=value,key=value": CUDA provider options over the defaults (measurements, support). */
function cudaOptionsFromEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (process.env.VLCACHE_CUDA_OPTIONS ?? '').split(',').filter(Boolean)) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  return out;
}

export interface SessionOptions {
  /** Outputs that stay on the device (GPU providers only), e.g. present KV between decode steps. */
  readonly keepOnDevice?: readonly string[];
  readonly threads?: number;
  /**
   * CUDA only: capture the run as a CUDA graph and replay it (`enable_cuda_graph`). Every input
   * and output must then be a held tensor at the same address on every run of one `graphId`.
   */
  readonly graphCapture?: boolean;
}

/**
 * Whether sessions run through the C-API seam: always on CUDA (device-resident outputs, IO
 * binding); on the CPU only when VLCACHE_NATIVE_CPU=1, so that tests here drive the same
 * code path the GPU runs (outputs kept "on the device" are then OrtValues in host memory).
 */
function native(device: Device): boolean {
  return device === 'cuda' || (device === 'cpu' && process.env.VLCACHE_NATIVE_CPU === '1');
}

/**
 * Where the native path's time goes, per session and phase (`VLCACHE_PROFILE=1`; the CUDA
 * profile script prints it): staging host feeds, the run itself, converting outputs.
 */
export const nativeProfile = new Map<string, { n: number; stageMs: number; runMs: number; outputMs: number }>();

/** A loaded graph on one device. */
export class Session {
  private constructor(
    private readonly s: ort.InferenceSession | undefined,
    private readonly c: CapiSession | undefined,
    readonly device: Device,
    private readonly keep: ReadonlySet<string>,
    /** The graph's name (its file's), for profiles. */
    readonly name = 'graph',
    /** JS door: created under ONNX Runtime's profiler (VLCACHE_ORT_PROFILE), whose file dispose writes. */
    private readonly profiling = false,
  ) {}

  /**
   * Creates a session for the ONNX file at `path` on `device`.
   * @throws DeviceError when the device cannot be used (no GPU adapter, missing CUDA libraries).
   */
  static async create(path: string | Uint8Array, device: Device, opts: SessionOptions = {}): Promise<Session> {
    const keep = new Set(device === 'cpu' && !native(device) ? [] : opts.keepOnDevice ?? []);
    if (native(device)) {
      try {
        const c = device === 'cuda'
          ? createCudaSession(path, opts.graphCapture ? { enable_cuda_graph: '1' } : {})
          : CapiSession.create(path, { threads: opts.threads, config: SESSION_CONFIG, profilePrefix: ortProfilePrefix(path) });
        return new Session(undefined, c, device, keep, typeof path === 'string' ? path.split('/').pop()! : 'graph');
      } catch (e) {
        if (e instanceof DeviceError) throw e;
        const msg = (e as Error).message ?? String(e);
        if (device === 'cuda' && /cuda|provider|device|driver|library/i.test(msg)) {
          throw new DeviceError(`the cuda device is not available here: ${explainDeviceFailure(msg)}`, device);
        }
        throw e;
      }
    }
    const ep: ort.InferenceSession.ExecutionProviderConfig = device === 'webgpu'
      ? { name: 'webgpu', validationMode: 'disabled' } as ort.InferenceSession.ExecutionProviderConfig
      : device;
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: [ep],
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      // NOTE: memory patterns are cached per distinct set of input shapes; with images of any size and
      // prompts of any length that cache grows without bound (measured: ~100 KB per request in
      // `vlcache soak`), so they are off.
      enableMemPattern: false,
      extra: { ...SESSION_CONFIG },
    };
    const profilePrefix = ortProfilePrefix(path);
    if (profilePrefix) Object.assign(options, { enableProfiling: true, profileFilePrefix: profilePrefix });
    if (opts.threads !== undefined) options.intraOpNumThreads = opts.threads;
    if (device === 'webgpu' && keep.size) {
      const loc: Record<string, ort.Tensor.DataLocation> = {};
      for (const name of keep) loc[name] = 'gpu-buffer';
      options.preferredOutputLocation = loc;
    }
    try {
      return new Session(await (typeof path === 'string' ? ortLib.InferenceSession.create(path, options) : ortLib.InferenceSession.create(path, options)), undefined, device, keep,
        typeof path === 'string' ? path.split('/').pop()! : 'graph', profilePrefix !== undefined);
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      if (device !== 'cpu' && /adapter|webgpu|dawn|vulkan|cuda|provider|device/i.test(msg)) {
        throw new DeviceError(`the ${device} device is not available here: ${explainDeviceFailure(msg)}`, device);
      }
      throw e;
    }
  }

  get inputNames(): readonly string[] {
    return this.c ? this.c.inputNames : this.s!.inputNames;
  }

  /**
   * Runs the graph. `fetches` preallocates outputs: a tensor given there is written in place
   * (the KV arena binds its buffers as both feed and fetch, engine/kv-arena.ts); the other
   * outputs are allocated by ONNX Runtime as usual — on the device for `keepOnDevice` names.
   */
  async run(feeds: Feeds, fetches?: Record<string, Tensor>, opts: { graphId?: number } = {}): Promise<Record<string, Tensor>> {
    try {
      return await this.runOn(feeds, fetches, opts);
    } catch (e) {
      throw classifyRunError(e, this.device, graphLabel(this.name));
    }
  }

  private async runOn(feeds: Feeds, fetches: Record<string, Tensor> | undefined, opts: { graphId?: number }): Promise<Record<string, Tensor>> {
    if (this.c) return this.runNative(this.c, feeds, fetches, opts.graphId);
    const s = this.s!;
    for (const t of [...Object.values(feeds), ...Object.values(fetches ?? {})]) {
      if (t instanceof DeviceTensor) throw new Error(`a ${this.device} session cannot take a tensor held through the C API`);
    }
    if (!fetches) return s.run(feeds as Record<string, ort.Tensor>);
    const all: Record<string, ort.Tensor | null> = {};
    for (const name of s.outputNames) all[name] = (fetches[name] as ort.Tensor | undefined) ?? null;
    return s.run(feeds as Record<string, ort.Tensor>, all as ort.InferenceSession.FetchesType);
  }

  /**
   * A run through the C API: host feeds are copied into ONNX Runtime's host tensors (the
   * provider uploads them), held tensors are bound as they are; `keepOnDevice` outputs stay
   * where the provider made them and come back as DeviceTensors, the rest as host tensors.
   */
  private async runNative(c: CapiSession, feeds: Feeds, fetches: Record<string, Tensor> = {}, graphId?: number): Promise<Record<string, Tensor>> {
    const staged: CapiTensor[] = [];
    const profile = process.env.VLCACHE_PROFILE === '1';
    const t0 = profile ? performance.now() : 0;
    let t1 = 0, t2 = 0;
    try {
      const inputs: Record<string, CapiTensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        if (t instanceof DeviceTensor) {
          inputs[name] = t.value;
        } else {
          if (t.location !== 'cpu') throw new Error(`a ${this.device} session cannot take a ${t.location} tensor (${name})`);
          const h = CapiTensor.alloc(t.type as CapiDType, t.dims);
          staged.push(h);
          const d = t.data as ArrayBufferView;
          h.write(d);
          inputs[name] = h;
        }
      }
      const outputs: CapiOutput[] = c.outputNames.map((name) => {
        const into = fetches[name];
        if (into === undefined) return { name, location: this.keep.has(name) && this.device === 'cuda' ? 'cuda' : 'cpu' };
        if (!(into instanceof DeviceTensor)) throw new Error(`a preallocated output of a ${this.device} session must be a DeviceTensor (${name})`);
        return { name, into: into.value };
      });
      // `gpu_graph_id`: which captured CUDA graph this run records or replays (one per set of buffer addresses).
      if (profile) t1 = performance.now();
      // VLCACHE_CAPI_SYNC=1: the run on the calling thread instead of koffi's worker pool (measured both ways).
      const got = await c.run(inputs, outputs, graphId === undefined ? {} : { gpu_graph_id: String(graphId) },
        { sync: process.env.VLCACHE_CAPI_SYNC === '1' });
      if (profile) t2 = performance.now();
      const result: Record<string, Tensor> = {};
      for (const o of outputs) {
        const v = got.get(o.name)!;
        if (o.into) result[o.name] = fetches[o.name];
        else if (this.keep.has(o.name)) result[o.name] = new DeviceTensor(v);
        else {
          try {
            result[o.name] = new ortLib.Tensor(v.dtype, v.read() as never, v.dims);
          } finally {
            v.release();
          }
        }
      }
      if (profile) {
        const p = nativeProfile.get(this.name) ?? { n: 0, stageMs: 0, runMs: 0, outputMs: 0 };
        p.n++; p.stageMs += t1 - t0; p.runMs += t2 - t1; p.outputMs += performance.now() - t2;
        nativeProfile.set(this.name, p);
      }
      return result;
    } finally {
      for (const h of staged) h.release();
    }
  }

  /** Whether runs go through the C-API seam (held tensors, `hold`). */
  get native(): boolean {
    return this.c !== undefined;
  }

  /**
   * A held tensor in this session's device memory, contents undefined (native sessions only):
   * buffers bound at fixed addresses run after run, such as a captured step's inputs. Dispose it
   * before the session.
   */
  hold(dtype: CapiDType, dims: readonly number[]): DeviceTensor {
    if (!this.c) throw new Error(`a ${this.device} session on onnxruntime-node's JS API holds no tensors`);
    return new DeviceTensor(this.c.alloc(this.device === 'cuda' ? 'cuda' : 'cpu', dtype, dims));
  }

  async dispose(): Promise<void> {
    if (this.c) this.c.release();
    else {
      // The profile file is written here on this door (the C API's release writes its own).
      if (this.profiling) this.s!.endProfiling();
      await this.s!.release();
    }
  }
}
