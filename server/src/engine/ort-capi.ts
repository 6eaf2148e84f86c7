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

/** koffi, or why it cannot be used (a platform without its prebuilt binary). */
function koffi(): Koffi | Error {
  try {
    return requireHere('koffi') as Koffi;
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

// ---------------------------------------------------------------------------------------------
// The C API (prototype): sessions, ORT-allocated tensors and IO binding through `OrtGetApiBase`.
// onnxruntime-node's JS API cannot pass CUDA provider options (only device_id) nor bind anything
// but WebGPU buffers; the C API can. Pointers are BigInts (koffi 3). Not yet used by the engine.
// ---------------------------------------------------------------------------------------------

/** Indices of the functions used here in ONNX Runtime's `OrtApi` struct of function pointers (append-only across versions). */
const API = {
  GetErrorCode: 1, GetErrorMessage: 2, CreateEnv: 3, CreateSessionFromArray: 8, CreateSessionOptions: 10,
  SetSessionGraphOptimizationLevel: 23, SetIntraOpNumThreads: 24, CreateRunOptions: 39, CreateTensorAsOrtValue: 48,
  GetTensorMutableData: 51, GetAllocatorWithDefaultOptions: 78, ReleaseEnv: 92, ReleaseStatus: 93, ReleaseSession: 95,
  ReleaseValue: 96, ReleaseRunOptions: 97, ReleaseSessionOptions: 100, RunWithBinding: 133, CreateIoBinding: 134,
  ReleaseIoBinding: 135, BindInput: 136, BindOutput: 137, AddRunConfigEntry: 165,
  SessionOptionsAppendExecutionProvider_CUDA_V2: 204, CreateCUDAProviderOptions: 205, UpdateCUDAProviderOptions: 206,
  ReleaseCUDAProviderOptions: 208,
} as const;

/** C prototypes (OrtStatus* is `void*`: NULL is success). */
const PROTOS: Record<keyof typeof API, string> = {
  GetErrorCode: 'int (void* status)',
  GetErrorMessage: 'const char* (void* status)',
  CreateEnv: 'void* (int level, const char* logid, _Out_ void** out)',
  CreateSessionFromArray: 'void* (void* env, const uint8_t* data, size_t len, void* options, _Out_ void** out)',
  CreateSessionOptions: 'void* (_Out_ void** out)',
  SetSessionGraphOptimizationLevel: 'void* (void* options, int level)',
  SetIntraOpNumThreads: 'void* (void* options, int n)',
  CreateRunOptions: 'void* (_Out_ void** out)',
  CreateTensorAsOrtValue: 'void* (void* allocator, const int64_t* shape, size_t rank, int type, _Out_ void** out)',
  GetTensorMutableData: 'void* (void* value, _Out_ void** out)',
  GetAllocatorWithDefaultOptions: 'void* (_Out_ void** out)',
  ReleaseEnv: 'void (void* p)',
  ReleaseStatus: 'void (void* p)',
  ReleaseSession: 'void (void* p)',
  ReleaseValue: 'void (void* p)',
  ReleaseRunOptions: 'void (void* p)',
  ReleaseSessionOptions: 'void (void* p)',
  RunWithBinding: 'void* (void* session, void* runOptions, void* binding)',
  CreateIoBinding: 'void* (void* session, _Out_ void** out)',
  ReleaseIoBinding: 'void (void* p)',
  BindInput: 'void* (void* binding, const char* name, void* value)',
  BindOutput: 'void* (void* binding, const char* name, void* value)',
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

  private constructor(k: Koffi) {
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

  /** Calls a `(..., _Out_ T** out)` function and returns *out. */
  out(call: (out: [Ptr | null]) => unknown): Ptr {
    const o: [Ptr | null] = [null];
    this.check(call(o));
    if (o[0] === null) throw new Error('ONNX Runtime returned no object');
    return o[0];
  }
}

export type CapiDType = 'float32' | 'float16' | 'int32' | 'int64';
const ELEMENT_TYPE: Record<CapiDType, number> = { float32: 1, int32: 6, int64: 7, float16: 10 };
const BYTES: Record<CapiDType, number> = { float32: 4, int32: 4, int64: 8, float16: 2 };

/** A tensor whose memory ONNX Runtime allocated (CPU default allocator); filled and read in place. */
export class CapiTensor {
  private released = false;
  private constructor(readonly ptr: Ptr, readonly dtype: CapiDType, readonly dims: readonly number[], private readonly data: Ptr) {}

  static alloc(dtype: CapiDType, dims: readonly number[]): CapiTensor {
    const c = CApi.get();
    const ptr = c.out((o) => c.fn.CreateTensorAsOrtValue(c.allocator, BigInt64Array.from(dims, BigInt), dims.length, ELEMENT_TYPE[dtype], o));
    const data = c.out((o) => c.fn.GetTensorMutableData(ptr, o));
    return new CapiTensor(ptr, dtype, dims, data);
  }

  get byteLength(): number {
    return this.dims.reduce((a, b) => a * b, 1) * BYTES[this.dtype];
  }

  /** The tensor's bytes, aliased (valid until `release`). */
  bytes(): Uint8Array {
    if (this.released) throw new Error('tensor released');
    const k = koffi() as Koffi;
    return new Uint8Array(k.view(this.data, this.byteLength));
  }

  write(src: ArrayBufferView): void {
    if (src.byteLength !== this.byteLength) throw new Error(`write: ${src.byteLength} bytes into a ${this.byteLength}-byte tensor`);
    this.bytes().set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  }

  /** A host copy of the data as a typed array of the tensor's dtype (float16 as raw Uint16 bits). */
  read(): Float32Array | Int32Array | BigInt64Array | Uint16Array {
    const b = this.bytes().slice();
    const ctor = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array, float16: Uint16Array }[this.dtype];
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
}

/** A session created through the C API, run with IO binding. */
export class CapiSession {
  private constructor(private readonly ptr: Ptr) {}

  static create(model: Uint8Array, opts: CapiSessionOptions = {}): CapiSession {
    const c = CApi.get();
    const so = c.out((o) => c.fn.CreateSessionOptions(o));
    try {
      c.check(c.fn.SetSessionGraphOptimizationLevel(so, 99 /* ORT_ENABLE_ALL */));
      if (opts.threads !== undefined) c.check(c.fn.SetIntraOpNumThreads(so, opts.threads));
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
      return new CapiSession(c.out((o) => c.fn.CreateSessionFromArray(c.env, model, model.byteLength, so, o)));
    } finally {
      c.fn.ReleaseSessionOptions(so);
    }
  }

  /** Binds `inputs` and pre-allocated `outputs` by name and runs; the outputs are written in place. */
  runBound(inputs: Readonly<Record<string, CapiTensor>>, outputs: Readonly<Record<string, CapiTensor>>, runConfig: Readonly<Record<string, string>> = {}): void {
    const c = CApi.get();
    const binding = c.out((o) => c.fn.CreateIoBinding(this.ptr, o));
    const runOptions = c.out((o) => c.fn.CreateRunOptions(o));
    try {
      for (const [name, t] of Object.entries(inputs)) c.check(c.fn.BindInput(binding, name, t.ptr));
      for (const [name, t] of Object.entries(outputs)) c.check(c.fn.BindOutput(binding, name, t.ptr));
      for (const [key, value] of Object.entries(runConfig)) c.check(c.fn.AddRunConfigEntry(runOptions, key, value));
      c.check(c.fn.RunWithBinding(this.ptr, runOptions, binding));
    } finally {
      c.fn.ReleaseRunOptions(runOptions);
      c.fn.ReleaseIoBinding(binding);
    }
  }

  release(): void {
    CApi.get().fn.ReleaseSession(this.ptr);
  }

  /** The ONNX Runtime version the C API reports. */
  static version(): string {
    return CApi.get().version;
  }
}
