/**
 * `installProvider` against a real HTTP server on 127.0.0.1 in the npm registry's URL
 * layout, serving a package tarball made here by the system `tar`: a good install keeps
 * only the provider's files; a checksum mismatch or an interrupted transfer installs
 * nothing; an interrupted transfer resumes with a Range request; npm's registry setting
 * (npm_config_registry) is followed; a tarball on another host is refused.
 */
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InstallBusyError, installProvider } from '../../../server/src/gpu/install';
import { DownloadError } from '../../../server/src/gpu/download';
import { RegistryError, tarballOnRegistry } from '../../../server/src/gpu/npm-registry';
import { LINUX_X64_CUDA, installDir, installState, providersRoot, type ProviderPackage } from '../../../server/src/gpu/provider-package';
import { RegistryServer } from './registry-server';

const PKG: ProviderPackage = { ...LINUX_X64_CUDA, npmName: 'com.example.test-gpu', npmVersion: '0.0.1' };
const PLUGIN = 'package/Plugins/Linux/x64';

/** A package tarball like the real one: the two provider files, a LICENSE, and files the provider does not need. */
function makeTarball(dir: string, cudaLib: Buffer): Buffer {
  const src = join(dir, 'src');
  mkdirSync(join(src, PLUGIN), { recursive: true });
  writeFileSync(join(src, PLUGIN, 'libonnxruntime_providers_cuda.so'), cudaLib);
  writeFileSync(join(src, PLUGIN, 'libonnxruntime_providers_shared.so'), Buffer.from('shared-provider-bytes'));
  writeFileSync(join(src, PLUGIN, 'libonnxruntime_providers_tensorrt.so'), Buffer.from('not needed'));
  writeFileSync(join(src, PLUGIN, 'libonnxruntime_providers_cuda.so.meta'), 'unity meta');
  writeFileSync(join(src, 'package', 'LICENSE'), 'MIT License\n');
  writeFileSync(join(src, 'package', 'package.json'), JSON.stringify({ name: PKG.npmName, version: PKG.npmVersion }));
  const tgz = join(dir, 'pkg.tgz');
  execFileSync('tar', ['czf', tgz, '-C', src, 'package']);
  return readFileSync(tgz);
}

function rangeStart(range: string | undefined): number {
  const m = /^bytes=(\d+)-$/.exec(range ?? '');
  assert.ok(m, `a Range request, not ${range}`);
  return Number(m[1]);
}

describe('installProvider (local registry over HTTP)', () => {
  let work: string;
  let server: RegistryServer;
  let cudaLib: Buffer;
  let env: NodeJS.ProcessEnv;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'vlcache-gpu-'));
    // Random bytes: the gzip barely shrinks them, so a cut after N bytes is a cut inside the file.
    cudaLib = randomBytes(1 << 20);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  beforeEach(async () => {
    server = new RegistryServer({ name: PKG.npmName, version: PKG.npmVersion, tarball: makeTarball(work, cudaLib) });
    await server.start();
    env = { VLCACHE_HOME: mkdtempSync(join(work, 'home-')), npm_config_registry: server.url };
  });
  afterEach(() => server.stop());

  /** Nothing an install leaves behind may look like an install: no folder, no temp folders. */
  function assertNothingInstalled(): void {
    if (!existsSync(providersRoot(env))) return;
    assert.equal(existsSync(installDir(PKG, env)), false);
    assert.equal(installState(PKG, env).installed, false);
    assert.deepEqual(readdirSync(providersRoot(env)).filter((f) => f !== 'downloads'), []);
  }

  it('installs only the provider files, atomically, with a manifest; a second call downloads nothing', async () => {
    const phases: string[] = [];
    let lastBytes = 0;
    const r = await installProvider(PKG, { env, onProgress: (p) => { phases.push(p.phase); if (p.download) lastBytes = p.download.bytes; } });
    assert.equal(r.changed, true);
    assert.equal(r.registry, server.url);
    const dir = installDir(PKG, env);
    assert.deepEqual(readdirSync(dir).sort(), ['LICENSE', 'install.json', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']);
    assert.ok(readFileSync(join(dir, 'libonnxruntime_providers_cuda.so')).equals(cudaLib));
    assert.equal(readFileSync(join(dir, 'libonnxruntime_providers_shared.so'), 'utf8'), 'shared-provider-bytes');
    assert.equal(r.manifest.integrity, server.integrity);
    assert.equal(r.manifest.files['libonnxruntime_providers_cuda.so'], cudaLib.length);
    assert.deepEqual([...new Set(phases)], ['resolve', 'download', 'verify', 'extract', 'done']);
    assert.equal(lastBytes, server.tarballSize);
    assert.deepEqual(readdirSync(providersRoot(env)).sort(), ['cuda-1.29.0', 'downloads']);
    assert.deepEqual(readdirSync(join(providersRoot(env), 'downloads')), [], 'the tarball is removed after a good install');
    assert.equal(installState(PKG, env).installed, true);

    const nTarball = server.tarballRequests.length;
    const again = await installProvider(PKG, { env });
    assert.equal(again.changed, false);
    assert.equal(server.tarballRequests.length, nTarball);
  });

  it('removes the temp folders a killed install left behind', async () => {
    mkdirSync(join(providersRoot(env), '.tmp-cuda-0123456789ab', 'x'), { recursive: true });
    mkdirSync(join(providersRoot(env), 'cuda-1.29.0.old-0123456789ab'), { recursive: true });
    await installProvider(PKG, { env });
    assert.deepEqual(readdirSync(providersRoot(env)).sort(), ['cuda-1.29.0', 'downloads']);
  });

  it('installs nothing when the tarball does not match the registry integrity', async () => {
    server.integrityOverride = `sha512-${randomBytes(64).toString('base64')}`;
    await assert.rejects(installProvider(PKG, { env }), (e: unknown) => e instanceof DownloadError && e.kind === 'integrity' && /checksum mismatch/.test(e.message));
    assertNothingInstalled();
    assert.deepEqual(readdirSync(join(providersRoot(env), 'downloads')).filter((f) => f.endsWith('.partial')), [], 'wrong bytes are not kept for a resume');
  });

  it('resumes an interrupted transfer with a Range request within one install', async () => {
    server.cutAfter = 300_000;
    let cuts = 0;
    const r = await installProvider(PKG, {
      env,
      onProgress: (p) => {
        // Let the connection through once the first attempt has been cut.
        if (p.download && p.download.resumedFrom > 0 && cuts++ === 0) server.cutAfter = undefined;
      },
    });
    assert.equal(r.changed, true);
    const ranges = server.tarballRequests.map((q) => q.range);
    assert.equal(ranges[0], undefined);
    // The resume starts at what the cut attempt saved (at most what was sent before the cut).
    const from = rangeStart(ranges[1]);
    assert.ok(from > 0 && from <= 300_000, `resumed from ${from}`);
    assert.ok(readFileSync(join(installDir(PKG, env), 'libonnxruntime_providers_cuda.so')).equals(cudaLib));
  });

  it('installs nothing when every attempt is cut, and the next install resumes where they stopped', async () => {
    server.cutAfter = 100_000;
    await assert.rejects(installProvider(PKG, { env }), (e: unknown) => e instanceof DownloadError && e.kind === 'network' && /run the install again to resume/.test(e.message));
    assertNothingInstalled();
    const ranges = server.tarballRequests.map((q) => q.range);
    assert.equal(ranges.length, 3);
    assert.equal(ranges[0], undefined);
    assert.ok(rangeStart(ranges[1]) > 0 && rangeStart(ranges[2]) > rangeStart(ranges[1]), ranges.join(' '));
    const saved = statSync(join(providersRoot(env), 'downloads', `${PKG.npmName}-${PKG.npmVersion}.tgz.partial`)).size;
    assert.ok(saved > rangeStart(ranges[2]));

    server.cutAfter = undefined;
    const r = await installProvider(PKG, { env });
    assert.equal(r.changed, true);
    assert.equal(server.tarballRequests.at(-1)!.range, `bytes=${saved}-`);
    assert.ok(readFileSync(join(installDir(PKG, env), 'libonnxruntime_providers_cuda.so')).equals(cudaLib));
  });

  it('installs nothing when cancelled mid-download', async () => {
    server.cutAfter = 200_000; // keeps the download from finishing before the abort lands
    const ac = new AbortController();
    await assert.rejects(
      installProvider(PKG, { env, signal: ac.signal, onProgress: (p) => { if (p.download && p.download.bytes > 0) ac.abort(); } }),
      (e: unknown) => e instanceof DownloadError && e.kind === 'cancelled',
    );
    assertNothingInstalled();
  });

  it('runs one install at a time: a second one meanwhile is told to wait', async () => {
    const results = await Promise.allSettled([installProvider(PKG, { env }), installProvider(PKG, { env })]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const busy = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(busy.reason instanceof InstallBusyError, String(busy.reason));
    assert.equal(installState(PKG, env).installed, true);
    assert.deepEqual(readdirSync(join(providersRoot(env), 'downloads')), [], 'the lock is released');
  });

  it('refuses a tarball that the registry places on another host', async () => {
    server.tarballUrlOverride = `http://127.0.0.2:9/${PKG.npmName}/-/x.tgz`;
    await assert.rejects(installProvider(PKG, { env }), RegistryError);
    assert.equal(server.tarballRequests.length, 0);
    assertNothingInstalled();
  });

  it('says plainly when the version is not on the registry', async () => {
    await assert.rejects(installProvider({ ...PKG, npmVersion: '9.9.9' }, { env }), /com\.example\.test-gpu@9\.9\.9 is not on the registry/);
  });
});

describe('tarballOnRegistry', () => {
  it('keeps a tarball on the configured registry, moves one on registry.npmjs.org to it, refuses other hosts', () => {
    const mirror = 'https://mirror.example/api/npm/remote/';
    assert.equal(tarballOnRegistry('https://mirror.example/api/npm/remote/a/-/a-1.tgz', mirror), 'https://mirror.example/api/npm/remote/a/-/a-1.tgz');
    assert.equal(tarballOnRegistry('https://registry.npmjs.org/a/-/a-1.tgz', mirror), 'https://mirror.example/api/npm/remote/a/-/a-1.tgz');
    assert.throws(() => tarballOnRegistry('https://cdn.elsewhere.example/a-1.tgz', mirror), RegistryError);
  });
});
