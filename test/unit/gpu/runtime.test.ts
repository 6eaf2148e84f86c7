/**
 * How the engine finds an installed CUDA provider, in fresh processes (the runtime library
 * is chosen once, before onnxruntime-node loads): with a provider install in VLCACHE_HOME,
 * libonnxruntime runs from the install folder and ONNX Runtime looks for the provider
 * libraries there; `auto` then tries CUDA first; without an install, or without the CUDA
 * libraries, asking for CUDA says what to do. No GPU is needed: the provider files here are
 * placeholders, so loading stops at the first of them, and the CUDA libraries are real
 * shared objects (copies of libz) under the CUDA sonames.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LINUX_X64_CUDA, MANIFEST, installDir, type InstallManifest } from '../../../server/src/gpu/provider-package';
import { findLibrary, librarySearchDirs } from '../../../server/src/gpu/find-libraries';

const ROOT = resolve(__dirname, '../../..');
const ORT = join(ROOT, 'server/src/engine/ort.ts');
const LIBZ = ['/lib/x86_64-linux-gnu/libz.so.1', '/usr/lib/x86_64-linux-gnu/libz.so.1', '/usr/lib64/libz.so.1'].find(existsSync);
const linuxX64 = process.platform === 'linux' && process.arch === 'x64';

/** Runs `body` (TypeScript, `ort` = engine/ort.ts) in a new node process; returns its JSON and stderr. */
function inChild(env: NodeJS.ProcessEnv, body: string): { out: Record<string, unknown>; stderr: string } {
  const script = `const ort = require(${JSON.stringify(ORT)});\n(async () => { ${body} })().then((o) => console.log(JSON.stringify(o)));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return { out: JSON.parse(r.stdout.trim().split('\n').at(-1)!), stderr: r.stderr };
}

/** A whole-looking install of placeholder files (manifest last, as the installer writes it). */
function fakeInstall(home: string): string {
  const dir = installDir(LINUX_X64_CUDA, { VLCACHE_HOME: home });
  mkdirSync(dir, { recursive: true });
  const files: Record<string, number> = {};
  for (const name of Object.values(LINUX_X64_CUDA.files)) {
    writeFileSync(join(dir, name), `placeholder ${name}`);
    files[name] = `placeholder ${name}`.length;
  }
  const manifest: InstallManifest = { npmName: LINUX_X64_CUDA.npmName, npmVersion: LINUX_X64_CUDA.npmVersion, ortVersion: LINUX_X64_CUDA.ortVersion,
    integrity: 'sha512-test', tarball: 'http://127.0.0.1/test.tgz', files, installedAt: new Date().toISOString() };
  writeFileSync(join(dir, MANIFEST), JSON.stringify(manifest));
  return dir;
}

describe('CUDA provider discovery (fresh processes)', { skip: !linuxX64 || !LIBZ ? 'linux-x64 with libz only' : false }, () => {
  let work: string;
  let cudaLibs: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'vlcache-rt-'));
    cudaLibs = join(work, 'cuda-libs');
    mkdirSync(cudaLibs);
    for (const soname of ['libcuda.so.1', ...LINUX_X64_CUDA.cudaLibraries]) copyFileSync(LIBZ!, join(cudaLibs, soname));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('runs libonnxruntime from the install folder, so ONNX Runtime looks for the provider there; auto tries CUDA first', () => {
    const home = mkdtempSync(join(work, 'home-'));
    const dir = fakeInstall(home);
    const { out, stderr } = inChild({ VLCACHE_HOME: home, LD_LIBRARY_PATH: cudaLibs },
      'return { runtime: ort.runtime, devices: ort.devicesToTry("auto").devices, probe: await ort.probeCuda() };');
    const runtime = out.runtime as { libPath: string; cudaProviderDir: string };
    assert.equal(runtime.libPath, join(dir, 'libonnxruntime.so.1'));
    assert.equal(runtime.cudaProviderDir, dir);
    assert.ok(lstatSync(runtime.libPath).isSymbolicLink());
    assert.match(readlinkSync(runtime.libPath), /onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime\.so\.1$/);
    assert.equal((out.devices as string[])[0], 'cuda');
    const probe = out.probe as { loaded: boolean; error: string };
    assert.equal(probe.loaded, false);
    // ONNX Runtime tried the install folder's provider library (a placeholder, so it is not an ELF file): its error
    // (logged, or in the session error the native CUDA path throws) names that path.
    assert.ok(`${stderr}\n${probe.error}`.includes(`${dir}/libonnxruntime_providers_shared.so`), `${stderr}\n${probe.error}`);
  });

  it('asks for the install when no provider is installed, and auto leaves CUDA out', () => {
    const home = mkdtempSync(join(work, 'home-'));
    const { out } = inChild({ VLCACHE_HOME: home, LD_LIBRARY_PATH: cudaLibs },
      'return { runtime: ort.runtime, devices: ort.devicesToTry("auto").devices, probe: await ort.probeCuda() };');
    assert.match((out.runtime as { libPath: string }).libPath, /node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime\.so\.1$/);
    assert.ok(!(out.devices as string[]).includes('cuda'));
    assert.match((out.probe as { error: string }).error, /the CUDA provider is not installed: run `vlcache gpu install cuda`/);
  });

  const curandElsewhere = findLibrary('libcurand.so.10', librarySearchDirs({ ...process.env, LD_LIBRARY_PATH: '' }));
  it('names the missing CUDA 13 library', { skip: curandElsewhere ? `this machine has ${curandElsewhere.path}` : false }, () => {
    const home = mkdtempSync(join(work, 'home-'));
    fakeInstall(home);
    const partial = join(work, 'no-curand');
    mkdirSync(partial, { recursive: true });
    for (const soname of ['libcuda.so.1', 'libcudart.so.13', 'libcublasLt.so.13', 'libcublas.so.13']) copyFileSync(LIBZ!, join(partial, soname));
    const { out } = inChild({ VLCACHE_HOME: home, LD_LIBRARY_PATH: partial }, 'return { probe: await ort.probeCuda() };');
    assert.match((out.probe as { error: string }).error, /CUDA 13 runtime libraries are missing: libcurand\.so\.10; `vlcache gpu doctor` says how to get them/);
  });
});
