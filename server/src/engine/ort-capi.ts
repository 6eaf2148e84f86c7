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
