/**
 * `vlcache gpu install cuda` and `vlcache gpu doctor` as a user runs them, in a child
 * process, against a local registry (npm_config_registry) that serves the real package
 * name with a tarball made here: the install reports progress and lands in VLCACHE_HOME,
 * the doctor then reports the provider installed (and, on a machine without a GPU, that
 * it does not load), a bad checksum exits 1 with nothing installed, and usage errors exit 2.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LINUX_X64_CUDA, installDir } from '../../../server/src/gpu/provider-package';
import { RegistryServer } from './registry-server';

const ROOT = resolve(__dirname, '../../..');

function vlcache(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'server/src/cli/main.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 },
      (err, stdout, stderr) => done({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout, stderr }));
  });
}

describe('vlcache gpu (CLI, local registry)', { skip: process.platform !== 'linux' || process.arch !== 'x64' ? 'linux-x64 only' : false }, () => {
  let work: string;
  let server: RegistryServer;
  const lib = randomBytes(200_000);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'vlcache-gpucli-'));
    const plugin = join(work, 'src', 'package', 'Plugins', 'Linux', 'x64');
    mkdirSync(plugin, { recursive: true });
    writeFileSync(join(plugin, 'libonnxruntime_providers_cuda.so'), lib);
    writeFileSync(join(plugin, 'libonnxruntime_providers_shared.so'), 'placeholder');
    writeFileSync(join(work, 'src', 'package', 'LICENSE'), 'MIT\n');
    execFileSync('tar', ['czf', join(work, 'p.tgz'), '-C', join(work, 'src'), 'package']);
    server = new RegistryServer({ name: LINUX_X64_CUDA.npmName, version: LINUX_X64_CUDA.npmVersion, tarball: readFileSync(join(work, 'p.tgz')) });
    await server.start();
  });
  after(async () => {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('installs from the configured registry, then the doctor sees the install', async () => {
    const env = { VLCACHE_HOME: mkdtempSync(join(work, 'home-')), npm_config_registry: server.url };
    const r = await vlcache(['gpu', 'install', 'cuda'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /CUDA provider installed in .*cuda-1\.29\.0 \(from http:\/\/127\.0\.0\.1:\d+\/\)/);
    assert.match(r.stderr, /sha512 matches the registry's integrity/);
    assert.match(r.stderr, /\(100%\)/);
    assert.ok(readFileSync(join(installDir(LINUX_X64_CUDA, env), 'libonnxruntime_providers_cuda.so')).equals(lib));

    const again = await vlcache(['gpu', 'install', 'cuda'], env);
    assert.match(again.stdout, /already installed/);

    const d = await vlcache(['gpu', 'doctor', '--json'], env);
    assert.equal(d.code, 0, d.stderr);
    const report = JSON.parse(d.stdout) as { checks: { id: string; status: string; detail: string }[]; cudaReady: boolean };
    assert.equal(report.checks.find((c) => c.id === 'provider')?.status, 'ok');
    const load = report.checks.find((c) => c.id === 'provider-load');
    assert.ok(load, 'the doctor tries to load an installed provider');
    // The provider files here are placeholders: they never load.
    assert.equal(load.status, 'problem');
    assert.equal(report.cudaReady, false);
  });

  it('exits 1 and installs nothing when the checksum differs', async () => {
    const env = { VLCACHE_HOME: mkdtempSync(join(work, 'home-')), npm_config_registry: server.url };
    server.integrityOverride = `sha512-${randomBytes(64).toString('base64')}`;
    try {
      const r = await vlcache(['gpu', 'install', 'cuda'], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /checksum mismatch.*nothing was installed/);
      assert.equal(existsSync(installDir(LINUX_X64_CUDA, env)), false);
    } finally {
      server.integrityOverride = undefined;
    }
  });

  it('exits 2 on a usage error', async () => {
    const r = await vlcache(['gpu', 'install', 'rocm'], {});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage:/);
  });
});
