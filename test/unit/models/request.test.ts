/**
 * `vlcache/downloadModel` as the daemon answers it (the handler main.ts wires), against the
 * local hub: work-done progress from begin to end with rising percentages and the folder in
 * the result; a cancelled request answers RequestCancelled, keeps the .part file, and the
 * next request resumes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LSPErrorCodes, ResponseError, type ProgressToken } from 'vscode-languageserver-protocol';
import type { ClientSink } from '../../../server/src/server';
import { downloadModelRequest } from '../../../server/src/download-model-handler';
import { writeRandomCheckpoint } from '../../support/random-checkpoint';
import { startLocalHub } from './local-hub';

class RecordingSink implements ClientSink {
  readonly progress: { kind: string; percentage?: number; message?: string }[] = [];
  sendStatus(): void {}
  sendPartialResult(): void {}
  sendWorkDone(_token: ProgressToken, value: { kind: string; percentage?: number; message?: string }): void { this.progress.push(value); }
  log(): void {}
}

test('vlcache/downloadModel: progress, result, cancellation keeping the .part, resume', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vlc-model-req-'));
  const saved = process.env.HF_ENDPOINT;
  writeRandomCheckpoint(join(tmp, 'source'), { family: 'qwen2_vl' });
  const hub = await startLocalHub('Qwen/Tiny-VL', join(tmp, 'source'));
  process.env.HF_ENDPOINT = hub.endpoint;
  try {
    const dest = join(tmp, 'models');
    hub.pauseAfter = 700;
    const abort = new AbortController();
    const cancelled = new RecordingSink();
    const part = join(dest, 'Tiny-VL', 'model.safetensors.part');
    const first = downloadModelRequest({ repo: 'Qwen/Tiny-VL', dest, workDoneToken: 'c' }, cancelled, abort.signal);
    const t0 = Date.now();
    while (!(existsSync(part) && statSync(part).size === 700)) {
      assert.ok(Date.now() - t0 < 10_000);
      await new Promise((r) => setTimeout(r, 10));
    }
    abort.abort();
    await assert.rejects(first, (e: unknown) => e instanceof ResponseError && e.code === LSPErrorCodes.RequestCancelled);
    assert.equal(cancelled.progress.at(-1)?.kind, 'end');
    assert.equal(statSync(part).size, 700);

    const sink = new RecordingSink();
    const r = await downloadModelRequest({ repo: 'Qwen/Tiny-VL', dest, workDoneToken: 'w' }, sink);
    assert.equal(r.dir, join(dest, 'Tiny-VL'));
    assert.equal(r.modelType, 'qwen2_vl');
    assert.ok(readFileSync(join(r.dir, 'model.safetensors')).equals(readFileSync(join(tmp, 'source', 'model.safetensors'))));
    assert.equal(hub.log.filter((q) => q.server === 'cdn').at(-1)!.range, 'bytes=700-');
    assert.equal(sink.progress[0].kind, 'begin');
    assert.equal(sink.progress.at(-1)!.kind, 'end');
    const pcts = sink.progress.filter((p) => p.kind === 'report').map((p) => p.percentage!);
    assert.equal(pcts.at(-1), 100);
    assert.ok(pcts.every((p, i) => i === 0 || p >= pcts[i - 1]));
    assert.ok(sink.progress.some((p) => /model\.safetensors, \d+ of \d+ MiB/.test(p.message ?? '')));

    await assert.rejects(downloadModelRequest({ repo: 'Qwen/Tiny-VL', dest: '' }, sink), (e: unknown) => e instanceof ResponseError && e.code === -32602);
    // A failure is an InternalError whose message is the downloader's own (the connection prefixes any other Error).
    await assert.rejects(downloadModelRequest({ repo: 'Qwen/No-Such-VL', dest }, sink),
      (e: unknown) => e instanceof ResponseError && e.code === -32603 && /^the hub answered 404 for Qwen\/No-Such-VL@main/.test(e.message));
    // `endpoint` (the vlcache.model.hubEndpoint setting) comes before HF_ENDPOINT.
    await assert.rejects(downloadModelRequest({ repo: 'Qwen/Tiny-VL', dest, endpoint: 'http://example.com' }, sink),
      (e: unknown) => e instanceof ResponseError && /^the hub endpoint http:\/\/example\.com is not https/.test(e.message));
    await assert.rejects(downloadModelRequest({ repo: 'Qwen/Tiny-VL', dest, endpoint: 'hub.local' }, sink),
      (e: unknown) => e instanceof ResponseError && /^the hub endpoint "hub\.local" is not a URL/.test(e.message));
  } finally {
    if (saved === undefined) delete process.env.HF_ENDPOINT; else process.env.HF_ENDPOINT = saved;
    await hub.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
