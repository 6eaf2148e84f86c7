/**
 * `vlcache gpu doctor`: what this machine has for the GPU providers — the NVIDIA driver,
 * CUDA 13 runtime libraries, cuDNN, the CUDA provider install, the Vulkan loader
 * (WebGPU) — and, for each thing missing, how to get it.
 */
import { createRequire } from 'node:module';
import { cudaPackageFor, installState, type ProviderPackage } from './provider-package';
import { findLibrary, librarySearchDirs, type FoundLibrary, type SearchDir } from './find-libraries';
import { detectDriver, driverProblem, gpuProblem, MIN_DRIVER_FOR_CUDA13, type DriverInfo } from './nvidia-driver';

export type CheckStatus = 'ok' | 'missing' | 'problem' | 'info';

export interface Check {
  readonly id: 'platform' | 'driver' | 'gpu' | 'cuda-libraries' | 'cudnn' | 'provider' | 'provider-load' | 'vulkan';
  readonly status: CheckStatus;
  readonly detail: string;
  /** What to do about it, when status is missing/problem. */
  readonly fix?: string;
}

/** Whether the installed provider loaded into ONNX Runtime (the engine's probe; the CLI passes it in). */
export interface ProviderLoad {
  readonly loaded: boolean;
  readonly error?: string;
}

export interface DoctorReport {
  readonly platform: string;
  readonly checks: readonly Check[];
  /** CUDA can be used: every check of the CUDA path is ok (and the provider loaded, when probed). */
  readonly cudaReady: boolean;
  readonly webgpuReady: boolean;
  readonly driver?: DriverInfo;
  readonly cudaLibraries: readonly { soname: string; path?: string; source?: string }[];
}

const WHEELS = 'pip install "nvidia-cuda-runtime==13.*" "nvidia-cublas==13.*" "nvidia-curand==10.*"';

/** The CUDA 13 runtime libraries the provider needs, where found (used by the engine to preload them). */
export function findCudaLibraries(pkg: ProviderPackage, dirs: readonly SearchDir[] = librarySearchDirs()): { soname: string; found?: FoundLibrary }[] {
  return pkg.cudaLibraries.map((soname) => ({ soname, found: findLibrary(soname, dirs) }));
}

export function runDoctor(opts: { env?: NodeJS.ProcessEnv; providerLoad?: ProviderLoad } = {}): DoctorReport {
  const env = opts.env ?? process.env;
  const platform = `${process.platform}-${process.arch}`;
  const checks: Check[] = [];
  const dirs = process.platform === 'linux' ? librarySearchDirs(env) : [];
  const vulkan = process.platform === 'linux' ? findLibrary('libvulkan.so.1', dirs) : undefined;
  const webgpuReady = process.platform !== 'linux' || vulkan !== undefined;
  const vulkanCheck: Check = process.platform !== 'linux'
    ? { id: 'vulkan', status: 'info', detail: 'WebGPU uses Metal (macOS) or D3D12 (Windows): no Vulkan loader needed' }
    : vulkan
      ? { id: 'vulkan', status: 'ok', detail: `Vulkan loader for WebGPU: ${vulkan.path}` }
      : { id: 'vulkan', status: 'missing', detail: 'Vulkan loader (libvulkan.so.1) for WebGPU: not found',
        fix: 'install it (Debian/Ubuntu: sudo apt install libvulkan1; Fedora: sudo dnf install vulkan-loader) with your GPU driver\'s Vulkan ICD' };

  const pkg = cudaPackageFor();
  if ('unsupported' in pkg) {
    checks.push({ id: 'platform', status: 'problem', detail: pkg.unsupported });
    checks.push(vulkanCheck);
    return { platform, checks, cudaReady: false, webgpuReady, cudaLibraries: [] };
  }
  checks.push({ id: 'platform', status: 'ok', detail: `${platform}: CUDA provider ${pkg.npmName}@${pkg.npmVersion} (ONNX Runtime ${pkg.ortVersion}, CUDA 13)` });

  const driver = detectDriver(dirs);
  const dp = driverProblem(driver);
  if (!driver.libcuda) {
    checks.push({ id: 'driver', status: 'missing', detail: dp!, fix: `install the NVIDIA driver ${MIN_DRIVER_FOR_CUDA13} or newer (https://www.nvidia.com/drivers; Ubuntu: sudo ubuntu-drivers install)` });
  } else if (dp) {
    checks.push({ id: 'driver', status: 'problem', detail: dp, fix: `update the NVIDIA driver to ${MIN_DRIVER_FOR_CUDA13} or newer` });
  } else {
    const v = [driver.version && `driver ${driver.version}`, driver.cudaVersion && `CUDA ${driver.cudaVersion}`].filter(Boolean).join(', ');
    checks.push({ id: 'driver', status: 'ok', detail: `NVIDIA driver: ${driver.libcuda.path}${v ? ` (${v})` : ''}` });
  }
  for (const g of driver.gpus) {
    const p = gpuProblem(g);
    checks.push(p ? { id: 'gpu', status: 'problem', detail: p, fix: 'use --device webgpu on this GPU' }
      : { id: 'gpu', status: 'ok', detail: `${g.name}${g.memoryMiB ? `, ${Math.round(g.memoryMiB / 1024)} GiB` : ''}${g.computeCapability ? `, compute capability ${g.computeCapability}` : ''}` });
  }

  const libs = findCudaLibraries(pkg, dirs);
  const missing = libs.filter((l) => !l.found).map((l) => l.soname);
  checks.push(missing.length === 0
    ? { id: 'cuda-libraries', status: 'ok', detail: `CUDA 13 runtime libraries: ${libs.map((l) => `${l.soname} (${l.found!.source}: ${l.found!.path})`).join(', ')}` }
    : { id: 'cuda-libraries', status: 'missing', detail: `CUDA 13 runtime libraries missing: ${missing.join(', ')}${libs.length > missing.length ? ` (found: ${libs.filter((l) => l.found).map((l) => l.soname).join(', ')})` : ''}`,
      fix: `either ${WHEELS} (VLCache finds them in site-packages/nvidia/*/lib), or install the CUDA 13 toolkit's runtime (cudart, cuBLAS, cuRAND) or put its lib64 on LD_LIBRARY_PATH` });

  const cudnn = findLibrary('libcudnn.so.9', dirs);
  checks.push({ id: 'cudnn', status: 'info', detail: `cuDNN: not needed (not in the provider's needed libraries)${cudnn ? `; found ${cudnn.path}` : ''}` });

  const state = installState(pkg, env);
  const ortNode = onnxruntimeNodeVersion();
  if (!state.installed) {
    checks.push({ id: 'provider', status: 'missing', detail: `CUDA provider: ${state.problem} (${state.dir})`, fix: 'vlcache gpu install cuda   (or the command "VLCache: Install CUDA Provider")' });
  } else if (ortNode !== pkg.ortVersion) {
    checks.push({ id: 'provider', status: 'problem', detail: `CUDA provider is ONNX Runtime ${pkg.ortVersion} but onnxruntime-node here is ${ortNode ?? 'absent'}; it loads only into the same version`, fix: `use a VLCache build with onnxruntime-node ${pkg.ortVersion}` });
  } else {
    checks.push({ id: 'provider', status: 'ok', detail: `CUDA provider installed: ${state.dir}` });
  }
  if (opts.providerLoad) {
    checks.push(opts.providerLoad.loaded
      ? { id: 'provider-load', status: 'ok', detail: 'a CUDA session was created: `--device auto` will use CUDA' }
      : { id: 'provider-load', status: 'problem', detail: `the CUDA provider did not load: ${opts.providerLoad.error}` });
  }
  checks.push(vulkanCheck);

  const cudaIds = new Set(['driver', 'gpu', 'cuda-libraries', 'provider', 'provider-load']);
  const cudaReady = checks.every((c) => !cudaIds.has(c.id) || c.status === 'ok');
  return {
    platform, checks, cudaReady, webgpuReady, driver,
    cudaLibraries: libs.map((l) => ({ soname: l.soname, path: l.found?.path, source: l.found?.source })),
  };
}

function onnxruntimeNodeVersion(): string | undefined {
  try {
    return (createRequire(__filename)('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** Plain text: one line per check, then what to do. */
export function formatDoctor(r: DoctorReport): string {
  const mark: Record<CheckStatus, string> = { ok: '✓', missing: '✗', problem: '✗', info: '·' };
  const lines = r.checks.map((c) => `${mark[c.status]} ${c.detail}`);
  lines.push('', `CUDA: ${r.cudaReady ? 'ready' : 'not ready'}    WebGPU: ${r.webgpuReady ? 'Vulkan loader present' : 'no Vulkan loader'}`);
  const fixes = r.checks.filter((c) => c.fix);
  if (fixes.length) {
    lines.push('', 'To fix:');
    for (const c of fixes) lines.push(`  - ${c.fix}`);
  }
  return lines.join('\n');
}
