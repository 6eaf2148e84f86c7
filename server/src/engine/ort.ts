/**
 * The only importer of onnxruntime-node: device selection, session creation,
 * tensors in and out. Everything else in the engine sees the small types below.
 */
import type * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Graph } from '../../../kernels/onnx/graph';
import { CapiSession, CapiTensor, cudaProviderAvailable, loadRuntime, preloadCudaLibraries, type CapiDType } from './ort-capi';

// NOTE: requiring onnxruntime-node loads libonnxruntime; loadRuntime() must come first, so that an
// installed CUDA provider is found beside the runtime (see ort-capi.ts).
export const runtime = loadRuntime();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ortLib = require('onnxruntime-node') as typeof ort;

export type Device = 'cpu' | 'webgpu' | 'cuda';
export type DeviceRequest = Device | 'auto';
export type Tensor = ort.Tensor;
export type Feeds = Record<string, ort.Tensor>;

export class DeviceError extends Error {
  constructor(message: string, readonly device: Device) {
    super(message);
    this.name = 'DeviceError';
  }
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
  if (t.location === 'cpu') {
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
export { CapiSession, CapiTensor, type CapiDType };

export function createCapiSession(model: Uint8Array, device: 'cpu' | 'cuda', opts: { threads?: number; cuda?: Record<string, string> } = {}): CapiSession {
  if (device === 'cuda') assertCudaUsable();
  return CapiSession.create(model, { threads: opts.threads, cuda: device === 'cuda' ? { device_id: '0', ...opts.cuda } : undefined });
}

export interface SessionOptions {
  /** Outputs that stay on the device (GPU providers only), e.g. present KV between decode steps. */
  readonly keepOnDevice?: readonly string[];
  readonly threads?: number;
}

/** A loaded graph on one device. */
export class Session {
  private constructor(private readonly s: ort.InferenceSession, readonly device: Device) {}

  /**
   * Creates a session for the ONNX file at `path` on `device`.
   * @throws DeviceError when the device cannot be used (no GPU adapter, missing CUDA libraries).
   */
  static async create(path: string | Uint8Array, device: Device, opts: SessionOptions = {}): Promise<Session> {
    if (device === 'cuda') assertCudaUsable();
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
    };
    if (opts.threads !== undefined) options.intraOpNumThreads = opts.threads;
    if (device !== 'cpu' && opts.keepOnDevice?.length) {
      const loc: Record<string, ort.Tensor.DataLocation> = {};
      for (const name of opts.keepOnDevice) loc[name] = device === 'webgpu' ? 'gpu-buffer' : 'cpu';
      options.preferredOutputLocation = loc;
    }
    try {
      return new Session(await (typeof path === 'string' ? ortLib.InferenceSession.create(path, options) : ortLib.InferenceSession.create(path, options)), device);
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      if (device !== 'cpu' && /adapter|webgpu|dawn|vulkan|cuda|provider|device/i.test(msg)) {
        throw new DeviceError(`the ${device} device is not available here: ${explainDeviceFailure(msg)}`, device);
      }
      throw e;
    }
  }

  get inputNames(): readonly string[] {
    return this.s.inputNames;
  }

  /**
   * Runs the graph. `fetches` preallocates outputs: a tensor given there is written in place
   * (the KV arena binds its buffers as both feed and fetch, engine/kv-arena.ts); the other
   * outputs are allocated by ONNX Runtime as usual.
   */
  async run(feeds: Feeds, fetches?: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    if (!fetches) return this.s.run(feeds);
    const all: Record<string, Tensor | null> = {};
    for (const name of this.s.outputNames) all[name] = fetches[name] ?? null;
    return this.s.run(feeds, all as ort.InferenceSession.FetchesType);
  }

  async dispose(): Promise<void> {
    await this.s.release();
  }
}
