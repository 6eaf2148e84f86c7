/**
 * The NVIDIA driver as the machine shows it: libcuda.so.1, the kernel module's version
 * (/proc/driver/nvidia/version), and nvidia-smi's GPUs and highest supported CUDA version.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { findLibrary, type FoundLibrary, type SearchDir } from './find-libraries';

/** CUDA 13.0 needs a Linux driver of at least this major version (580.65.06). */
export const MIN_DRIVER_FOR_CUDA13 = 580;

export interface Gpu {
  readonly name: string;
  readonly memoryMiB?: number;
  /** e.g. "9.0"; the provider carries GPU code for 7.5, 8.0, 8.6, 8.9, 9.0 and 12.0 (no PTX). */
  readonly computeCapability?: string;
}

export interface DriverInfo {
  readonly libcuda?: FoundLibrary;
  /** e.g. "580.65.06", from /proc or nvidia-smi. */
  readonly version?: string;
  /** Highest CUDA version the driver supports, e.g. "13.0" (nvidia-smi). */
  readonly cudaVersion?: string;
  readonly gpus: readonly Gpu[];
}

export function detectDriver(dirs: readonly SearchDir[]): DriverInfo {
  const libcuda = findLibrary('libcuda.so.1', dirs);
  const proc = '/proc/driver/nvidia/version';
  let version = existsSync(proc) ? parseProcVersion(readFileSync(proc, 'utf8')) : undefined;
  let cudaVersion: string | undefined;
  let gpus: Gpu[] = [];
  const smi = spawnSync('nvidia-smi', [], { encoding: 'utf8', timeout: 20_000 });
  if (smi.status === 0) {
    const header = parseSmiHeader(smi.stdout);
    version ??= header.driverVersion;
    cudaVersion = header.cudaVersion;
    const q = spawnSync('nvidia-smi', ['--query-gpu=name,memory.total,compute_cap', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 20_000 });
    if (q.status === 0) gpus = parseSmiGpus(q.stdout);
  }
  return { libcuda, version, cudaVersion, gpus };
}

/** "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 ..." → "580.65.06". */
export function parseProcVersion(text: string): string | undefined {
  return /Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1];
}

/** nvidia-smi's banner: "| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: 13.0 |". */
export function parseSmiHeader(text: string): { driverVersion?: string; cudaVersion?: string } {
  return {
    driverVersion: /Driver Version:\s*(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1],
    cudaVersion: /CUDA Version:\s*(\d+\.\d+)/.exec(text)?.[1],
  };
}

/** `--query-gpu=name,memory.total,compute_cap --format=csv,noheader,nounits` lines. */
export function parseSmiGpus(text: string): Gpu[] {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((line) => {
    const [name, mem, cc] = line.split(',').map((s) => s.trim());
    const memoryMiB = Number(mem);
    return { name, memoryMiB: Number.isFinite(memoryMiB) ? memoryMiB : undefined, computeCapability: /^\d+\.\d+$/.test(cc ?? '') ? cc : undefined };
  });
}

/** Why this driver cannot run CUDA 13 code, or undefined when it can (or nothing says otherwise). */
export function driverProblem(d: DriverInfo): string | undefined {
  if (!d.libcuda) return 'no NVIDIA driver: libcuda.so.1 was not found';
  if (d.cudaVersion && Number(d.cudaVersion.split('.')[0]) < 13) {
    return `the NVIDIA driver ${d.version ?? ''} supports CUDA up to ${d.cudaVersion}; the CUDA provider needs CUDA 13 (driver ≥ ${MIN_DRIVER_FOR_CUDA13})`.replace('  ', ' ');
  }
  if (!d.cudaVersion && d.version && Number(d.version.split('.')[0]) < MIN_DRIVER_FOR_CUDA13) {
    return `the NVIDIA driver ${d.version} is older than ${MIN_DRIVER_FOR_CUDA13}, the first to support CUDA 13`;
  }
  return undefined;
}

/** Compute capabilities the provider has GPU code for (no PTX, so others cannot run it). */
export const PROVIDER_ARCHS = ['7.5', '8.0', '8.6', '8.9', '9.0', '12.0'];

export function gpuProblem(g: Gpu): string | undefined {
  if (!g.computeCapability) return undefined;
  const [major, minor] = g.computeCapability.split('.').map(Number);
  // Code for sm_XY runs on sm_XZ with Z ≥ Y (same major); there is no PTX for newer majors.
  const ok = PROVIDER_ARCHS.some((a) => {
    const [M, m] = a.split('.').map(Number);
    return M === major && m <= minor;
  });
  return ok ? undefined : `${g.name} (compute capability ${g.computeCapability}) has no code in the CUDA provider, which covers ${PROVIDER_ARCHS.join(', ')}`;
}
