/**
 * ONNX Runtime's native library, reached through koffi (a prebuilt FFI): which
 * libonnxruntime the process loads, and the CUDA 13 libraries the CUDA provider needs.
 * Imported only by ort.ts, which calls `loadRuntime()` before it requires onnxruntime-node.
 *
 * Why the runtime is loaded from the provider's folder: ONNX Runtime loads
 * `libonnxruntime_providers_shared.so` and `libonnxruntime_providers_cuda.so` from the
 * folder of the libonnxruntime it runs as (dladdr). The provider is installed per user
 * (gpu/install.ts), not into onnxruntime-node's folder (which belongs to the extension
 * and is replaced on update). So the install folder gets a link `libonnxruntime.so.1` →
 * onnxruntime-node's own file, and that link is loaded first; when onnxruntime-node's
 * binding then asks for `libonnxruntime.so.1`, the loader hands it the library already
 * loaded under that soname, whose folder is the provider's.
 */
import { existsSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { cudaPackageFor, installState } from '../gpu/provider-package';
import { findCudaLibraries } from '../gpu/doctor';

type Koffi = typeof import('koffi');
type KoffiLib = ReturnType<Koffi['load']>;

const requireHere = createRequire(__filename);

let configured = false;

/** koffi, or why it cannot be used (a platform without its prebuilt binary). */
function koffi(): Koffi | Error {
  try {
    const k = requireHere('koffi') as Koffi;
    if (!configured) {
      configured = true;
      // NOTE: koffi runs a native function on a stack it allocates: 2 MiB for a synchronous call and
      // 128 KiB for an asynchronous one by default. ONNX Runtime's CUDA provider (session creation, a
      // run's first cuBLAS/cuDNN calls) needs more: with the defaults the first CUDA run crashed the
      // process (SIGSEGV, H200, 2026-12-05). 16 MiB is koffi's maximum. We make at most a few async
      // calls at a time (one run per session), so two resident pools keep the memory bounded.
      k.config({ ...k.config(), sync_stack_size: 16 << 20, async_stack_size: 16 << 20, resident_async_pools: 2 });
    }
    return k;
  } catch (e) {
    return e as Error;
  }
}

/** Libraries loaded here stay loaded for the life of the process (the handles are kept). */
const kept: KoffiLib[] = [];

export interface RuntimeInfo {
  /** onnxruntime-node's version. */
  readonly ortVersion: string;
  /** The path libonnxruntime was (or will be) loaded from. */
  readonly libPath: string;
  /** The installed CUDA provider's folder, when ONNX Runtime will look for it there. */
  readonly cudaProviderDir?: string;
  /** Why an installed provider is not used (version mismatch, no koffi). */
  readonly note?: string;
}

/** The folder of onnxruntime-node's native binding and its libonnxruntime. */
export function bindingDir(): string {
  return join(dirname(requireHere.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
}

let runtime: RuntimeInfo | undefined;

/**
 * Loads libonnxruntime from the CUDA provider's install folder when a provider for this
 * ONNX Runtime version is installed; otherwise leaves onnxruntime-node to load its own.
 * Idempotent; must run before onnxruntime-node is first required.
 */
export function loadRuntime(env: NodeJS.ProcessEnv = process.env): RuntimeInfo {
  if (runtime) return runtime;
  const ortVersion = (requireHere('onnxruntime-node/package.json') as { version: string }).version;
  const own = join(bindingDir(), 'libonnxruntime.so.1');
  runtime = { ortVersion, libPath: own };
  const pkg = cudaPackageFor();
  if ('unsupported' in pkg) return runtime;
  const state = installState(pkg, env);
  if (!state.installed) return runtime;
  if (pkg.ortVersion !== ortVersion) {
    return (runtime = { ...runtime, note: `the installed CUDA provider is ONNX Runtime ${pkg.ortVersion}; onnxruntime-node here is ${ortVersion}` });
  }
  const k = koffi();
  if (k instanceof Error) return (runtime = { ...runtime, note: `koffi cannot load here (${k.message.split('\n')[0]}), so the installed CUDA provider cannot be used` });
  try {
    const link = join(state.dir, 'libonnxruntime.so.1');
    linkTo(link, own);
    kept.push(k.load(link));
    return (runtime = { ortVersion, libPath: link, cudaProviderDir: state.dir });
  } catch (e) {
    return (runtime = { ...runtime, note: `the CUDA provider's folder could not host ONNX Runtime: ${(e as Error).message}` });
  }
}

/** Makes `link` a symlink to `target` (replaced atomically when it points elsewhere). */
function linkTo(link: string, target: string): void {
  try {
    if (readlinkSync(link) === target) return;
  } catch {
    // absent or not a link: (re)create it
  }
  const tmp = `${link}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

/** Whether ONNX Runtime will find a CUDA provider: installed per user, or beside the binding (onnxruntime-node's own install). */
export function cudaProviderAvailable(): boolean {
  return loadRuntime().cudaProviderDir !== undefined || existsSync(join(bindingDir(), 'libonnxruntime_providers_cuda.so'));
}

let cudaLibs: { missing: string[] } | undefined;

/**
 * Loads the CUDA 13 runtime libraries the provider needs, by full path, from wherever
 * they were found (LD_LIBRARY_PATH, ldconfig, a toolkit, NVIDIA's Python wheels): the
 * provider's own `libcublas.so.13` etc. then resolve to them without LD_LIBRARY_PATH.
 * @returns the sonames that were not found or did not load.
 */
export function preloadCudaLibraries(): { missing: string[] } {
  if (cudaLibs) return cudaLibs;
  const pkg = cudaPackageFor();
  const k = koffi();
  if ('unsupported' in pkg || k instanceof Error) return (cudaLibs = { missing: [] });
  const missing: string[] = [];
  for (const soname of ['libcuda.so.1']) {
    try {
      kept.push(k.load(soname));
    } catch {
      missing.push(soname);
    }
  }
  for (const { soname, found } of findCudaLibraries(pkg)) {
    try {
      if (!found) throw new Error('not found');
      kept.push(k.load(found.path));
    } catch {
      missing.push(soname);
    }
  }
  return (cudaLibs = { missing });
}

let cudaMemcpyFn: CFn | undefined;

/**
 * `cudaMemcpy` of the CUDA runtime the provider loaded (libcudart.so.13, preloaded by path):
 * the few bytes a captured decode step's inputs and outputs need each token (a Run of a copy
 * graph would cost more than the step). Synchronous: it returns when the copy is done; every
 * ONNX Runtime run has finished its stream before it returns, so ordering holds.
 * kind: 1 host to device, 2 device to host.
 */
function cudaMemcpy(dst: unknown, src: unknown, bytes: number, kind: 1 | 2): void {
  if (!cudaMemcpyFn) {
    const k = koffi();
    if (k instanceof Error) throw k;
    const lib = k.load('libcudart.so.13');
    kept.push(lib);
    cudaMemcpyFn = lib.func('int cudaMemcpy(void* dst, const void* src, size_t count, int kind)') as CFn;
  }
  const rc = cudaMemcpyFn(dst, src, bytes, kind) as number;
  if (rc !== 0) throw new Error(`cudaMemcpy (${kind === 1 ? 'host to device' : 'device to host'}, ${bytes} bytes) failed with CUDA error ${rc}`);
}

/** Bytes in use and total on the current CUDA device (`cudaMemGetInfo`), or undefined where CUDA is not loaded. */
export function cudaMemoryInUse(): { used: number; total: number } | undefined {
  const k = koffi();
  if (k instanceof Error || !cudaMemcpyFn) return undefined; // CUDA runtime not yet used by this process
  const lib = k.load('libcudart.so.13');
  kept.push(lib);
  const free: [number | bigint] = [0], total: [number | bigint] = [0];
  const rc = lib.func('int cudaMemGetInfo(_Out_ size_t* free, _Out_ size_t* total)')(free, total) as number;
  if (rc !== 0) return undefined;
  return { used: Number(total[0]) - Number(free[0]), total: Number(total[0]) };
}

// ---------------------------------------------------------------------------------------------
// The C API (prototype): sessions, ORT-allocated tensors and IO binding through `OrtGetApiBase`.
// onnxruntime-node's JS API cannot pass CUDA provider options (only device_id) nor bind anything
// but WebGPU buffers; the C API can. Pointers are BigInts (koffi 3). Not yet used by the engine.
// ---------------------------------------------------------------------------------------------

/** Indices of the functions used here in ONNX Runtime's `OrtApi` struct of function pointers (append-only across versions). */
const API = {
  GetErrorCode: 1, GetErrorMessage: 2, CreateEnv: 3, CreateSession: 7, CreateSessionFromArray: 8, CreateSessionOptions: 10,
  EnableProfiling: 14, DisableMemPattern: 17, SetSessionGraphOptimizationLevel: 23, SetIntraOpNumThreads: 24,
  SessionGetInputCount: 30, SessionGetOutputCount: 31, SessionGetInputName: 36, SessionGetOutputName: 37,
  CreateRunOptions: 39, CreateTensorAsOrtValue: 48,
  GetTensorMutableData: 51, GetTensorTypeAndShape: 65, GetTensorElementType: 60, GetDimensionsCount: 61, GetDimensions: 62,
  CreateMemoryInfo: 68, AllocatorFree: 76, GetAllocatorWithDefaultOptions: 78,
  ReleaseEnv: 92, ReleaseStatus: 93, ReleaseMemoryInfo: 94, ReleaseSession: 95,
  ReleaseValue: 96, ReleaseRunOptions: 97, SessionEndProfiling: 110, ReleaseTensorTypeAndShapeInfo: 99, ReleaseSessionOptions: 100,
  RunWithBinding: 133, CreateIoBinding: 134,
  ReleaseIoBinding: 135, BindInput: 136, BindOutput: 137, BindOutputToDevice: 138, GetBoundOutputValues: 140,
  ClearBoundInputs: 141, ClearBoundOutputs: 142, AddSessionConfigEntry: 130, CreateAllocator: 131, ReleaseAllocator: 132,
  AddRunConfigEntry: 165,
  SessionOptionsAppendExecutionProvider_CUDA_V2: 204, CreateCUDAProviderOptions: 205, UpdateCUDAProviderOptions: 206,
  ReleaseCUDAProviderOptions: 208,
} as const;

/** C prototypes (OrtStatus* is `void*`: NULL is success). */
const PROTOS: Record<keyof typeof API, string> = {
  GetErrorCode: 'int (void* status)',
  GetErrorMessage: 'const char* (void* status)',
  CreateEnv: 'void* (int level, const char* logid, _Out_ void** out)',
  CreateSession: 'void* (void* env, const char* path, void* options, _Out_ void** out)',
  CreateSessionFromArray: 'void* (void* env, const uint8_t* data, size_t len, void* options, _Out_ void** out)',
  CreateSessionOptions: 'void* (_Out_ void** out)',
  EnableProfiling: 'void* (void* options, const char* prefix)',
  DisableMemPattern: 'void* (void* options)',
  SetSessionGraphOptimizationLevel: 'void* (void* options, int level)',
  SetIntraOpNumThreads: 'void* (void* options, int n)',
  SessionGetInputCount: 'void* (void* session, _Out_ size_t* out)',
  SessionGetOutputCount: 'void* (void* session, _Out_ size_t* out)',
  SessionGetInputName: 'void* (void* session, size_t index, void* allocator, _Out_ void** out)',
  SessionGetOutputName: 'void* (void* session, size_t index, void* allocator, _Out_ void** out)',
  CreateRunOptions: 'void* (_Out_ void** out)',
  CreateTensorAsOrtValue: 'void* (void* allocator, const int64_t* shape, size_t rank, int type, _Out_ void** out)',
  GetTensorMutableData: 'void* (void* value, _Out_ void** out)',
  GetTensorTypeAndShape: 'void* (void* value, _Out_ void** out)',
  GetTensorElementType: 'void* (void* info, _Out_ int* out)',
  GetDimensionsCount: 'void* (void* info, _Out_ size_t* out)',
  GetDimensions: 'void* (void* info, _Out_ int64_t* dims, size_t n)',
  CreateMemoryInfo: 'void* (const char* name, int allocatorType, int id, int memType, _Out_ void** out)',
  AllocatorFree: 'void* (void* allocator, void* p)',
  GetAllocatorWithDefaultOptions: 'void* (_Out_ void** out)',
  ReleaseEnv: 'void (void* p)',
  ReleaseStatus: 'void (void* p)',
  ReleaseMemoryInfo: 'void (void* p)',
  ReleaseSession: 'void (void* p)',
  ReleaseValue: 'void (void* p)',
  ReleaseRunOptions: 'void (void* p)',
  ReleaseTensorTypeAndShapeInfo: 'void (void* p)',
  ReleaseSessionOptions: 'void (void* p)',
  SessionEndProfiling: 'void* (void* session, void* allocator, _Out_ void** out)',
  RunWithBinding: 'void* (void* session, void* runOptions, void* binding)',
  CreateIoBinding: 'void* (void* session, _Out_ void** out)',
  ReleaseIoBinding: 'void (void* p)',
  BindInput: 'void* (void* binding, const char* name, void* value)',
  BindOutput: 'void* (void* binding, const char* name, void* value)',
  BindOutputToDevice: 'void* (void* binding, const char* name, void* memInfo)',
  GetBoundOutputValues: 'void* (void* binding, void* allocator, _Out_ void** values, _Out_ size_t* count)',
  ClearBoundInputs: 'void (void* binding)',
  ClearBoundOutputs: 'void (void* binding)',
  AddSessionConfigEntry: 'void* (void* options, const char* key, const char* value)',
  CreateAllocator: 'void* (void* session, void* memInfo, _Out_ void** out)',
  ReleaseAllocator: 'void (void* p)',
  AddRunConfigEntry: 'void* (void* runOptions, const char* key, const char* value)',
  SessionOptionsAppendExecutionProvider_CUDA_V2: 'void* (void* options, void* cudaOptions)',
  CreateCUDAProviderOptions: 'void* (_Out_ void** out)',
  UpdateCUDAProviderOptions: 'void* (void* cudaOptions, const char** keys, const char** values, size_t n)',
  ReleaseCUDAProviderOptions: 'void (void* p)',
};

type CFn = (...args: unknown[]) => unknown;
type Ptr = bigint;

/** ONNX Runtime's C API, bound once per process from the libonnxruntime chosen by `loadRuntime`. */
class CApi {
  private static instance?: CApi;
  readonly version: string;
  readonly fn: Record<keyof typeof API, CFn>;
  readonly env: Ptr;
  readonly allocator: Ptr;
  readonly k: Koffi;

  private constructor(k: Koffi) {
    this.k = k;
    const lib = k.load(loadRuntime().libPath);
    kept.push(lib);
    const base = lib.func('void* OrtGetApiBase()')() as Ptr;
    // OrtApiBase = { const OrtApi* (*GetApi)(uint32_t); const char* (*GetVersionString)(void); }
    this.version = k.call(k.decode(base, 8, 'void*'), k.proto('const char* OrtVc_GetVersionString()')) as string;
    const apiVersion = Number(this.version.split('.')[1]);
    const api = k.call(k.decode(base, 0, 'void*'), k.proto('void* OrtVc_GetApi(uint32_t version)'), apiVersion) as Ptr | null;
    if (!api) throw new Error(`ONNX Runtime ${this.version} has no C API version ${apiVersion}`);
    const fn = {} as Record<keyof typeof API, CFn>;
    for (const name of Object.keys(API) as (keyof typeof API)[]) {
      const [ret, args] = PROTOS[name].split(/ (?=\()/);
      const proto = k.proto(`${ret} OrtVc_${name}${args}`);
      fn[name] = k.decode(k.decode(api, API[name] * 8, 'void*'), proto) as CFn;
    }
    this.fn = fn;
    this.env = this.out((o) => fn.CreateEnv(3 /* ORT_LOGGING_LEVEL_ERROR */, 'vlcache-capi', o));
    this.allocator = this.out((o) => fn.GetAllocatorWithDefaultOptions(o));
  }

  static get(): CApi {
    if (CApi.instance) return CApi.instance;
    const k = koffi();
    if (k instanceof Error) throw new Error(`the ONNX Runtime C API needs koffi, which cannot load here: ${k.message.split('\n')[0]}`);
    return (CApi.instance = new CApi(k));
  }

  /** Throws ONNX Runtime's message when `status` is an error (and releases it). */
  check(status: unknown): void {
    if (status === null || status === undefined || status === 0n) return;
    const message = this.fn.GetErrorMessage(status) as string;
    const code = this.fn.GetErrorCode(status) as number;
    this.fn.ReleaseStatus(status);
    throw new Error(`ONNX Runtime (code ${code}): ${message}`);
  }

  /** A function's call on koffi's worker thread, as a promise of its result. */
  async(fn: CFn, ...args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      (fn as unknown as { async: (...a: unknown[]) => void }).async(...args, (err: unknown, res: unknown) => (err ? reject(err) : resolve(res)));
    });
  }

  /** A session's input or output names, in order. */
  names(session: Ptr, kind: 'input' | 'output'): string[] {
    const count: [number | bigint] = [0];
    this.check(kind === 'input' ? this.fn.SessionGetInputCount(session, count) : this.fn.SessionGetOutputCount(session, count));
    const names: string[] = [];
    for (let i = 0; i < Number(count[0]); i++) {
      const p = this.out((o) => (kind === 'input' ? this.fn.SessionGetInputName : this.fn.SessionGetOutputName)(session, i, this.allocator, o));
      names.push(this.k.decode(p, 'char', -1) as string);
      this.check(this.fn.AllocatorFree(this.allocator, p));
    }
    return names;
  }

  /** Calls a `(..., _Out_ T** out)` function and returns *out. */
  out(call: (out: [Ptr | null]) => unknown): Ptr {
    const o: [Ptr | null] = [null];
    this.check(call(o));
    if (o[0] === null) throw new Error('ONNX Runtime returned no object');
    return o[0];
  }
}

export type CapiDType = 'float32' | 'float16' | 'int32' | 'int64' | 'uint8' | 'bool';
const ELEMENT_TYPE: Record<CapiDType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10 };
const BYTES: Record<CapiDType, number> = { float32: 4, uint8: 1, int32: 4, int64: 8, bool: 1, float16: 2 };
const DTYPE_OF = new Map(Object.entries(ELEMENT_TYPE).map(([d, n]) => [n, d as CapiDType]));

/** Where a value's memory is: host memory, or the GPU of the CUDA provider (device 0). */
export type CapiLocation = 'cpu' | 'cuda';

/** `OrtMemoryInfo`s for binding outputs to a location (created once, never released). */
const memoryInfos = new Map<CapiLocation, Ptr>();
function memoryInfo(where: CapiLocation): Ptr {
  let m = memoryInfos.get(where);
  if (m === undefined) {
    const c = CApi.get();
    // OrtDeviceAllocator = 0, OrtMemTypeDefault = 0; "Cpu" / "Cuda" are ONNX Runtime's allocator names.
    m = c.out((o) => c.fn.CreateMemoryInfo(where === 'cpu' ? 'Cpu' : 'Cuda', 0, 0, 0, o));
    memoryInfos.set(where, m);
  }
  return m;
}

/**
 * One OrtValue tensor: host memory ONNX Runtime allocated (filled and read in place), or
 * device memory a run produced (opaque: bind it to another run, or download it).
 */
export class CapiTensor {
  private released = false;
  private constructor(readonly ptr: Ptr, readonly dtype: CapiDType, readonly dims: readonly number[], readonly location: CapiLocation) {}

  /** A host tensor of ONNX Runtime's default CPU allocator (contents undefined until written). */
  static alloc(dtype: CapiDType, dims: readonly number[]): CapiTensor {
    const c = CApi.get();
    const ptr = c.out((o) => c.fn.CreateTensorAsOrtValue(c.allocator, BigInt64Array.from(dims, BigInt), dims.length, ELEMENT_TYPE[dtype], o));
    return new CapiTensor(ptr, dtype, dims, 'cpu');
  }

  /** A tensor of an allocator (a session's device allocator: `CapiSession.alloc`). */
  static allocWith(allocator: Ptr, location: CapiLocation, dtype: CapiDType, dims: readonly number[]): CapiTensor {
    const c = CApi.get();
    const ptr = c.out((o) => c.fn.CreateTensorAsOrtValue(allocator, BigInt64Array.from(dims, BigInt), dims.length, ELEMENT_TYPE[dtype], o));
    return new CapiTensor(ptr, dtype, dims, location);
  }

  /** Takes ownership of an OrtValue a run returned, reading its element type and shape. */
  static adopt(ptr: Ptr, location: CapiLocation): CapiTensor {
    const c = CApi.get();
    const info = c.out((o) => c.fn.GetTensorTypeAndShape(ptr, o));
    try {
      const type: [number] = [0];
      c.check(c.fn.GetTensorElementType(info, type));
      const rank: [number | bigint] = [0];
      c.check(c.fn.GetDimensionsCount(info, rank));
      const dims = new BigInt64Array(Number(rank[0]));
      c.check(c.fn.GetDimensions(info, dims, dims.length));
      const dtype = DTYPE_OF.get(type[0]);
      if (!dtype) {
        c.fn.ReleaseValue(ptr);
        throw new Error(`ONNX Runtime returned a tensor of element type ${type[0]}, which the engine does not use`);
      }
      return new CapiTensor(ptr, dtype, Array.from(dims, Number), location);
    } finally {
      c.fn.ReleaseTensorTypeAndShapeInfo(info);
    }
  }

  get byteLength(): number {
    return this.dims.reduce((a, b) => a * b, 1) * BYTES[this.dtype];
  }

  /** The tensor's host bytes, aliased (valid until `release`). */
  bytes(): Uint8Array {
    if (this.released) throw new Error('tensor released');
    if (this.location !== 'cpu') throw new Error(`a ${this.location} tensor has no host bytes: download it first`);
    if (this.byteLength === 0) return new Uint8Array(0);
    const c = CApi.get();
    const data = c.out((o) => c.fn.GetTensorMutableData(this.ptr, o));
    return new Uint8Array(c.k.view(data, this.byteLength));
  }

  write(src: ArrayBufferView): void {
    if (src.byteLength !== this.byteLength) throw new Error(`write: ${src.byteLength} bytes into a ${this.byteLength}-byte tensor`);
    this.bytes().set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  }

  /** Overwrites the whole tensor with host bytes, wherever it lives (on CUDA: one cudaMemcpy). */
  upload(src: ArrayBufferView): void {
    if (this.location === 'cpu') return this.write(src);
    if (src.byteLength !== this.byteLength) throw new Error(`upload: ${src.byteLength} bytes into a ${this.byteLength}-byte tensor`);
    cudaMemcpy(this.dataPtr(), new Uint8Array(src.buffer, src.byteOffset, src.byteLength), src.byteLength, 1);
  }

  /** A host copy of the tensor's bytes, wherever it lives (on CUDA: one cudaMemcpy). */
  download(): Uint8Array {
    if (this.location === 'cpu') return this.bytes().slice();
    const out = new Uint8Array(this.byteLength);
    cudaMemcpy(out, this.dataPtr(), out.byteLength, 2);
    return out;
  }

  private dataPtr(): Ptr {
    if (this.released) throw new Error('tensor released');
    const c = CApi.get();
    return c.out((o) => c.fn.GetTensorMutableData(this.ptr, o));
  }

  /** A host copy of the data as a typed array of the tensor's dtype (float16 as raw Uint16 bits, bool as bytes). */
  read(): Float32Array | Int32Array | BigInt64Array | Uint16Array | Uint8Array {
    const b = this.bytes().slice();
    const ctor = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array, float16: Uint16Array, uint8: Uint8Array, bool: Uint8Array }[this.dtype];
    return new ctor(b.buffer);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    CApi.get().fn.ReleaseValue(this.ptr);
  }
}

export interface CapiSessionOptions {
  readonly threads?: number;
  /** CUDA provider options (e.g. `device_id`, `enable_cuda_graph`), appended with SessionOptionsAppendExecutionProvider_CUDA_V2. */
  readonly cuda?: Readonly<Record<string, string>>;
  /** Session config entries (`AddSessionConfigEntry`). */
  readonly config?: Readonly<Record<string, string>>;
  /** ONNX Runtime's own profiler: per-node times written to `<prefix>_<date>.json` when the session is released. */
  readonly profilePrefix?: string;
}

/** One output of a run: written into `into` (preallocated, e.g. a KV arena), or allocated at `location`. */
export interface CapiOutput {
  readonly name: string;
  readonly into?: CapiTensor;
  readonly location?: CapiLocation;
}

/** A session created through the C API, run with IO binding. */
export class CapiSession {
  /** The session's allocators by location (valid while the session lives). */
  private allocators = new Map<CapiLocation, Ptr>();
  private constructor(private readonly ptr: Ptr, readonly inputNames: readonly string[], readonly outputNames: readonly string[],
    private readonly profiling = false) {}

  /**
   * A tensor in the memory this session's provider computes in (contents undefined). It must be
   * released before the session: ONNX Runtime's session allocator goes with the session.
   */
  alloc(location: CapiLocation, dtype: CapiDType, dims: readonly number[]): CapiTensor {
    if (location === 'cpu') return CapiTensor.alloc(dtype, dims);
    let a = this.allocators.get(location);
    if (a === undefined) {
      const c = CApi.get();
      a = c.out((o) => c.fn.CreateAllocator(this.ptr, memoryInfo(location), o));
      this.allocators.set(location, a);
    }
    return CapiTensor.allocWith(a, location, dtype, dims);
  }

  /** A session for an ONNX model (bytes, or a file path — which keeps external weight files beside it working). */
  static create(model: Uint8Array | string, opts: CapiSessionOptions = {}): CapiSession {
    const c = CApi.get();
    const so = c.out((o) => c.fn.CreateSessionOptions(o));
    try {
      c.check(c.fn.SetSessionGraphOptimizationLevel(so, 99 /* ORT_ENABLE_ALL */));
      // Memory patterns are planned per set of input shapes and kept (see ort.ts): off, as on the JS path.
      c.check(c.fn.DisableMemPattern(so));
      if (opts.threads !== undefined) c.check(c.fn.SetIntraOpNumThreads(so, opts.threads));
      for (const [key, value] of Object.entries(opts.config ?? {})) c.check(c.fn.AddSessionConfigEntry(so, key, value));
      if (opts.profilePrefix) c.check(c.fn.EnableProfiling(so, opts.profilePrefix));
      if (opts.cuda) {
        const co = c.out((o) => c.fn.CreateCUDAProviderOptions(o));
        try {
          const keys = Object.keys(opts.cuda);
          c.check(c.fn.UpdateCUDAProviderOptions(co, keys, keys.map((key) => opts.cuda![key]), keys.length));
          c.check(c.fn.SessionOptionsAppendExecutionProvider_CUDA_V2(so, co));
        } finally {
          c.fn.ReleaseCUDAProviderOptions(co);
        }
      }
      const ptr = typeof model === 'string'
        ? c.out((o) => c.fn.CreateSession(c.env, model, so, o))
        : c.out((o) => c.fn.CreateSessionFromArray(c.env, model, model.byteLength, so, o));
      return new CapiSession(ptr, c.names(ptr, 'input'), c.names(ptr, 'output'), opts.profilePrefix !== undefined);
    } finally {
      c.fn.ReleaseSessionOptions(so);
    }
  }

  /**
   * Runs with IO binding on a worker thread (the event loop stays free during a long run), or on the
   * calling thread with `sync`.
   * Outputs with `into` are written in place (and returned as given); the others are
   * allocated by ONNX Runtime at their `location` and returned as new tensors the caller owns.
   */
  async run(inputs: Readonly<Record<string, CapiTensor>>, outputs: readonly CapiOutput[], runConfig: Readonly<Record<string, string>> = {},
    opts: { sync?: boolean } = {}): Promise<Map<string, CapiTensor>> {
    const c = CApi.get();
    const binding = c.out((o) => c.fn.CreateIoBinding(this.ptr, o));
    const runOptions = c.out((o) => c.fn.CreateRunOptions(o));
    try {
      for (const [name, t] of Object.entries(inputs)) c.check(c.fn.BindInput(binding, name, t.ptr));
      for (const o of outputs) {
        c.check(o.into ? c.fn.BindOutput(binding, o.name, o.into.ptr) : c.fn.BindOutputToDevice(binding, o.name, memoryInfo(o.location ?? 'cpu')));
      }
      for (const [key, value] of Object.entries(runConfig)) c.check(c.fn.AddRunConfigEntry(runOptions, key, value));
      c.check(opts.sync ? c.fn.RunWithBinding(this.ptr, runOptions, binding) : await c.async(c.fn.RunWithBinding, this.ptr, runOptions, binding));
      // The bound outputs' OrtValues, in the order they were bound (an array the default allocator owns).
      const arr: [Ptr | null] = [null];
      const count: [number | bigint] = [0];
      c.check(c.fn.GetBoundOutputValues(binding, c.allocator, arr, count));
      const n = Number(count[0]);
      if (n !== outputs.length || arr[0] === null) throw new Error(`ONNX Runtime returned ${n} outputs for ${outputs.length} bound`);
      const values = c.k.decode(arr[0], 0, 'void*', n) as Ptr[];
      c.check(c.fn.AllocatorFree(c.allocator, arr[0]));
      const result = new Map<string, CapiTensor>();
      outputs.forEach((o, i) => {
        if (o.into) {
          c.fn.ReleaseValue(values[i]); // a second handle on the caller's tensor
          result.set(o.name, o.into);
        } else {
          result.set(o.name, CapiTensor.adopt(values[i], o.location ?? 'cpu'));
        }
      });
      return result;
    } finally {
      c.fn.ReleaseRunOptions(runOptions);
      c.fn.ReleaseIoBinding(binding);
    }
  }

  release(): void {
    const c = CApi.get();
    if (this.profiling) {
      // Writes the profile file; its name comes back in a string the default allocator owns.
      const name = c.out((o) => c.fn.SessionEndProfiling(this.ptr, c.allocator, o));
      c.check(c.fn.AllocatorFree(c.allocator, name));
    }
    for (const a of this.allocators.values()) c.fn.ReleaseAllocator(a);
    this.allocators.clear();
    c.fn.ReleaseSession(this.ptr);
  }

  /** The ONNX Runtime version the C API reports. */
  static version(): string {
    return CApi.get().version;
  }
}
