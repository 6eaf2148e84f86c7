/**
 * Which npm package carries ONNX Runtime's CUDA provider for this platform, which of
 * its files the provider needs, and where it is installed (one folder per user).
 *
 * The package is Microsoft's official build (MIT, CUDA 13) republished on the npm
 * registry by asus4/onnxruntime-unity. A provider loads only into the ONNX Runtime of
 * the same version, so the package version is tied to the pinned onnxruntime-node.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface ProviderPackage {
  /** The provider's name in folder names and messages. */
  readonly provider: 'cuda';
  readonly npmName: string;
  readonly npmVersion: string;
  /** The ONNX Runtime version inside the package (must equal onnxruntime-node's). */
  readonly ortVersion: string;
  /** Tarball entry → file name in the install folder: only what the provider needs. */
  readonly files: Readonly<Record<string, string>>;
  /** CUDA runtime libraries in the provider's NEEDED list (beside the driver's libcuda.so.1). */
  readonly cudaLibraries: readonly string[];
}

export const LINUX_X64_CUDA: ProviderPackage = {
  provider: 'cuda',
  npmName: 'com.github.asus4.onnxruntime.linux-x64-gpu',
  npmVersion: '0.4.9',
  ortVersion: '1.29.0',
  files: {
    'package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so': 'libonnxruntime_providers_cuda.so',
    'package/Plugins/Linux/x64/libonnxruntime_providers_shared.so': 'libonnxruntime_providers_shared.so',
    'package/LICENSE': 'LICENSE',
  },
  // `readelf -d libonnxruntime_providers_cuda.so`: no cuDNN (ONNX Runtime 1.28 made it optional).
  cudaLibraries: ['libcudart.so.13', 'libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10'],
};

/** The CUDA provider package for this machine, or why there is none. */
export function cudaPackageFor(platform = process.platform, arch = process.arch): ProviderPackage | { unsupported: string } {
  if (platform === 'linux' && arch === 'x64') return LINUX_X64_CUDA;
  if (platform === 'win32' && arch === 'x64') {
    // The same package family has win-x64-gpu; loading it from a per-user folder is not built or tested yet.
    return { unsupported: 'the CUDA provider is not yet supported on Windows x64 by VLCache (use WebGPU: --device webgpu)' };
  }
  if (platform === 'darwin') return { unsupported: 'macOS has no CUDA; VLCache uses WebGPU (Metal) there' };
  return { unsupported: `no CUDA provider package for ${platform}-${arch}` };
}

/** Per-user cache root: VLCACHE_HOME, else $XDG_CACHE_HOME/vlcache (same rule as engine/graph-files.ts). */
export function userCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VLCACHE_HOME) return env.VLCACHE_HOME;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vlcache');
}

export const providersRoot = (env: NodeJS.ProcessEnv = process.env): string => join(userCacheRoot(env), 'providers');

/** The install folder of `pkg`: `<providers>/cuda-1.29.0`. */
export function installDir(pkg: ProviderPackage, env: NodeJS.ProcessEnv = process.env): string {
  return join(providersRoot(env), `${pkg.provider}-${pkg.ortVersion}`);
}

export const MANIFEST = 'install.json';

/** Written last into the install folder; the folder appears by one rename, so a manifest means a whole install. */
export interface InstallManifest {
  readonly npmName: string;
  readonly npmVersion: string;
  readonly ortVersion: string;
  /** The registry's `dist.integrity` the tarball matched. */
  readonly integrity: string;
  readonly tarball: string;
  /** File name → size in bytes. */
  readonly files: Readonly<Record<string, number>>;
  readonly installedAt: string;
}

export type InstallState =
  | { readonly installed: true; readonly dir: string; readonly manifest: InstallManifest }
  | { readonly installed: false; readonly dir: string; readonly problem: string };

/** Whether `pkg` is installed whole in its folder (manifest present, every file of the recorded size). */
export function installState(pkg: ProviderPackage, env: NodeJS.ProcessEnv = process.env): InstallState {
  const dir = installDir(pkg, env);
  if (!existsSync(dir)) return { installed: false, dir, problem: 'not installed' };
  let manifest: InstallManifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as InstallManifest;
  } catch {
    return { installed: false, dir, problem: `the install folder has no readable ${MANIFEST}` };
  }
  if (manifest.npmName !== pkg.npmName || manifest.npmVersion !== pkg.npmVersion) {
    return { installed: false, dir, problem: `the install folder holds ${manifest.npmName}@${manifest.npmVersion}, not ${pkg.npmName}@${pkg.npmVersion}` };
  }
  for (const [name, size] of Object.entries(manifest.files)) {
    const p = join(dir, name);
    if (!existsSync(p) || statSync(p).size !== size) return { installed: false, dir, problem: `${name} is missing or truncated` };
  }
  return { installed: true, dir, manifest };
}
