/**
 * `vlcache/gpuInstall` as the daemon answers it (the handler main.ts wires), against a
 * local registry serving the real package name: work-done progress from begin to end with
 * rising percentages, the machine checks in the result, a restart asked for; a cancelled
 * install answers RequestCancelled and installs nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LSPErrorCodes, ResponseError, type ProgressToken } from 'vscode-languageserver-protocol';
import type { ClientSink } from '../../../server/src/server';
import { gpuInstall } from '../../../server/src/gpu-install-handler';
import { LINUX_X64_CUDA, installDir } from '../../../server/src/gpu/provider-package';
import { RegistryServer } from './registry-server';

/** Records every work-done value in full. */
class RecordingSink implements ClientSink {
  readonly progress: { token: ProgressToken; value: { kind: string; percentage?: number; message?: string } }[] = [];
  onProgress?: (v: { kind: string; percentage?: number }) => void;
  sendStatus(): void {}
  sendPartialResult(): void {}
  sendWorkDone(token: ProgressToken, value: { kind: string; percentage?: number; message?: string }): void {
    this.progress.push({ token, value });
    this.onProgress?.(value);
  }
  log(): void {}
}

describe('vlcache/gpuInstall (daemon handler, local registry)', { skip: process.platform !== 'linux' || process.arch !== 'x64' ? 'linux-x64 only' : false }, () => {
  let work: string;
  let server: RegistryServer;
  const saved = { home: process.env.VLCACHE_HOME, registry: process.env.npm_config_registry };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'vlcache-gpureq-'));
    const plugin = join(work, 'src', 'package', 'Plugins', 'Linux', 'x64');
    mkdirSync(plugin, { recursive: true });
    writeFileSync(join(plugin, 'libonnxruntime_providers_cuda.so'), randomBytes(600_000));
    writeFileSync(join(plugin, 'libonnxruntime_providers_shared.so'), 'placeholder');
    writeFileSync(join(work, 'src', 'package', 'LICENSE'), 'MIT\n');
    execFileSync('tar', ['czf', join(work, 'p.tgz'), '-C', join(work, 'src'), 'package']);
    server = new RegistryServer({ name: LINUX_X64_CUDA.npmName, version: LINUX_X64_CUDA.npmVersion, tarball: readFileSync(join(work, 'p.tgz')) });
    process.env.npm_config_registry = await server.start();
  });
  after(async () => {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
    if (saved.home === undefined) delete process.env.VLCACHE_HOME; else process.env.VLCACHE_HOME = saved.home;
    if (saved.registry === undefined) delete process.env.npm_config_registry; else process.env.npm_config_registry = saved.registry;
  });

  it('installs with progress from begin to end and returns the machine checks', async () => {
    process.env.VLCACHE_HOME = mkdtempSync(join(work, 'home-'));
    const sink = new RecordingSink();
    const r = await gpuInstall({ provider: 'cuda', workDoneToken: 'w1' }, sink);
    assert.equal(r.installed, true);
    assert.equal(r.changed, true);
    assert.equal(r.restartNeeded, true);
    assert.equal(r.registry, server.url);
    assert.equal(r.dir, installDir(LINUX_X64_CUDA));
    assert.equal(r.checks.find((c) => c.id === 'provider')?.status, 'ok');
    const kinds = sink.progress.map((p) => p.value.kind);
    assert.equal(kinds[0], 'begin');
    assert.equal(kinds.at(-1), 'end');
    assert.ok(sink.progress.every((p) => p.token === 'w1'));
    const pcts = sink.progress.filter((p) => p.value.kind === 'report').map((p) => p.value.percentage!);
    assert.ok(pcts.every((p, i) => i === 0 || p >= pcts[i - 1]), pcts.join(' '));
    assert.equal(pcts.at(-1), 100);
    assert.ok(sink.progress.some((p) => /downloading \d+ of \d+ MiB/.test(p.value.message ?? '')));

    const again = await gpuInstall({ provider: 'cuda' }, new RecordingSink());
    assert.equal(again.changed, false);
    assert.equal(again.restartNeeded, false);
  });

  it('answers RequestCancelled and installs nothing when cancelled', async () => {
    process.env.VLCACHE_HOME = mkdtempSync(join(work, 'home-'));
    server.cutAfter = 300_000; // the transfer cannot finish before the cancellation lands
    const ac = new AbortController();
    const sink = new RecordingSink();
    sink.onProgress = (v) => { if (v.kind === 'report' && (v.percentage ?? 0) > 0) ac.abort(); };
    try {
      await assert.rejects(gpuInstall({ provider: 'cuda', workDoneToken: 'w2' }, sink, ac.signal),
        (e: unknown) => e instanceof ResponseError && e.code === LSPErrorCodes.RequestCancelled);
    } finally {
      server.cutAfter = undefined;
    }
    assert.equal(existsSync(installDir(LINUX_X64_CUDA)), false);
    assert.equal(sink.progress.at(-1)?.value.kind, 'end');
  });
});
