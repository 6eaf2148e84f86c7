/**
 * The doctor's pieces: driver facts read from the texts the driver prints (the kernel
 * module's /proc line, nvidia-smi's banner and CSV), the CUDA 13 and architecture verdicts,
 * and library search over real folders (LD_LIBRARY_PATH first, then a CUDA toolkit, then
 * NVIDIA's wheels in a virtualenv); the report names what is missing and how to get it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLibrary, librarySearchDirs } from '../../../server/src/gpu/find-libraries';
import { driverProblem, gpuProblem, parseProcVersion, parseSmiGpus, parseSmiHeader } from '../../../server/src/gpu/nvidia-driver';
import { findCudaLibraries, formatDoctor, runDoctor } from '../../../server/src/gpu/doctor';
import { LINUX_X64_CUDA } from '../../../server/src/gpu/provider-package';

describe('NVIDIA driver facts', () => {
  it('reads the versions the driver prints', () => {
    assert.equal(parseProcVersion('NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 06:54:38 UTC 2025\nGCC version:  gcc 12'), '580.65.06');
    assert.equal(parseProcVersion('NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  575.57.08  Release Build'), '575.57.08');
    const banner = '| NVIDIA-SMI 580.95.05              Driver Version: 580.95.05      CUDA Version: 13.0     |';
    assert.deepEqual(parseSmiHeader(banner), { driverVersion: '580.95.05', cudaVersion: '13.0' });
    assert.deepEqual(parseSmiGpus('NVIDIA H200, 143771, 9.0\nTesla P100-PCIE-16GB, 16384, 6.0\n'), [
      { name: 'NVIDIA H200', memoryMiB: 143771, computeCapability: '9.0' },
      { name: 'Tesla P100-PCIE-16GB', memoryMiB: 16384, computeCapability: '6.0' },
    ]);
  });

  it('says when the driver cannot run CUDA 13 and which GPUs the provider has no code for', () => {
    const libcuda = { soname: 'libcuda.so.1', path: '/usr/lib/x86_64-linux-gnu/libcuda.so.1', source: 'ldconfig' as const };
    assert.match(driverProblem({ gpus: [] })!, /no NVIDIA driver/);
    assert.match(driverProblem({ libcuda, version: '550.54.15', cudaVersion: '12.4', gpus: [] })!, /supports CUDA up to 12\.4.*needs CUDA 13/);
    assert.match(driverProblem({ libcuda, version: '560.35.03', gpus: [] })!, /older than 580/);
    assert.equal(driverProblem({ libcuda, version: '580.65.06', cudaVersion: '13.0', gpus: [] }), undefined);
    assert.equal(gpuProblem({ name: 'H200', computeCapability: '9.0' }), undefined);
    assert.equal(gpuProblem({ name: 'RTX 3090', computeCapability: '8.6' }), undefined);
    assert.equal(gpuProblem({ name: 'A10 (8.7 Orin)', computeCapability: '8.7' }), undefined);
    assert.match(gpuProblem({ name: 'P100', computeCapability: '6.0' })!, /no code in the CUDA provider/);
    assert.match(gpuProblem({ name: 'GB200', computeCapability: '10.0' })!, /no code/);
  });
});

describe('CUDA library search (real folders)', () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'vlcache-libs-'));
    for (const [dir, names] of [
      ['ld', ['libcublas.so.13']],
      ['toolkit/lib64', ['libcudart.so.13', 'libcublas.so.13']],
      ['venv/lib/python3.12/site-packages/nvidia/cu13/lib', ['libcublasLt.so.13', 'libcudart.so.13']],
    ] as const) {
      mkdirSync(join(work, dir), { recursive: true });
      for (const n of names) writeFileSync(join(work, dir, n), '');
    }
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('looks in LD_LIBRARY_PATH, then the toolkit, then the wheels of the active virtualenv', () => {
    const env = { LD_LIBRARY_PATH: join(work, 'ld'), CUDA_HOME: join(work, 'toolkit'), VIRTUAL_ENV: join(work, 'venv'), PATH: '' };
    const dirs = librarySearchDirs(env);
    const none = new Map<string, string>();
    assert.deepEqual(findLibrary('libcublas.so.13', dirs, none), { soname: 'libcublas.so.13', path: join(work, 'ld', 'libcublas.so.13'), source: 'LD_LIBRARY_PATH' });
    assert.equal(findLibrary('libcudart.so.13', dirs, none)?.source, 'CUDA toolkit');
    assert.deepEqual(findLibrary('libcublasLt.so.13', dirs, none),
      { soname: 'libcublasLt.so.13', path: join(work, 'venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublasLt.so.13'), source: 'Python wheel' });
    const found = findCudaLibraries(LINUX_X64_CUDA, dirs);
    assert.deepEqual(found.map((f) => f.soname), ['libcudart.so.13', 'libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10']);
  });

  it('reports every check with a fix for what is missing (and never claims CUDA is ready here without a provider)', () => {
    const env = { VLCACHE_HOME: join(work, 'home'), LD_LIBRARY_PATH: join(work, 'ld') };
    const r = runDoctor({ env });
    if (process.platform === 'linux' && process.arch === 'x64') {
      assert.deepEqual(r.checks.map((c) => c.id).filter((id) => id !== 'gpu'), ['platform', 'driver', 'cuda-libraries', 'cudnn', 'provider', 'vulkan']);
      const provider = r.checks.find((c) => c.id === 'provider')!;
      assert.equal(provider.status, 'missing');
      assert.match(provider.fix!, /vlcache gpu install cuda/);
      assert.equal(r.cudaReady, false);
    } else {
      assert.equal(r.checks[0].id, 'platform');
    }
    const text = formatDoctor(r);
    for (const c of r.checks) assert.ok(text.includes(c.detail));
    for (const c of r.checks.filter((x) => x.fix)) assert.ok(text.includes(c.fix!));
  });
});
