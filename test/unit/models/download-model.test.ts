/**
 * Model download against a real local hub on 127.0.0.1 (local-hub.ts): the hub's URL layout,
 * a 302 to a CDN on another port for the weights, Range resume, sha256 checks, the
 * model_type check before any weight, the token kept from the redirect host, and
 * cancellation keeping the .part file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomCheckpoint } from '../../support/random-checkpoint';
import { loadCheckpoint } from '../../../server/src/engine/checkpoint';
import { downloadModel, ModelDownloadError } from '../../../server/src/models/download-model';
import { startLocalHub, type LocalHub } from './local-hub';

const REPO = 'Qwen/Tiny-VL';

async function withHub(body: (hub: LocalHub, dest: string, source: string) => Promise<void>, family: 'qwen2_vl' | 'qwen2_5_vl' = 'qwen2_vl'): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'vlc-model-dl-'));
  const source = join(tmp, 'source');
  writeRandomCheckpoint(source, { family });
  writeFileSync(join(source, 'README.md'), 'not fetched');
  const hub = await startLocalHub(REPO, source);
  try {
    await body(hub, join(tmp, 'dest'), source);
  } finally {
    await hub.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The requests that reached the CDN (the redirect target of the weights). */
const cdnBytes = (hub: LocalHub): LocalHub['log'] => hub.log.filter((r) => r.server === 'cdn');

test('a whole download: the engine files only, weights through the 302, the folder loads', async () => {
  await withHub(async (hub, dest, source) => {
    const progress: number[] = [];
    const r = await downloadModel(REPO, dest, { hub: { endpoint: hub.endpoint }, onProgress: (p) => progress.push(p.bytes) });
    assert.equal(r.dir, join(dest, 'Tiny-VL'));
    assert.equal(r.commit, hub.commit);
    assert.equal(r.modelType, 'qwen2_vl');
    assert.deepEqual(readdirSync(r.dir).sort(), readdirSync(source).filter((f) => f !== 'README.md').sort(), 'README.md is not fetched');
    assert.ok(readdirSync(r.dir).includes('model.safetensors') && readdirSync(r.dir).includes('tokenizer.json'));
    assert.ok(readFileSync(join(r.dir, 'model.safetensors')).equals(readFileSync(join(source, 'model.safetensors'))));
    assert.equal(loadCheckpoint(r.dir).fingerprint, loadCheckpoint(source).fingerprint);
    assert.equal(cdnBytes(hub).length, 1, 'the weights came from the redirect target');
    assert.equal(progress.at(-1), r.totalBytes);
    assert.ok(progress.every((b, i) => i === 0 || b >= progress[i - 1]), 'progress never goes back');
    assert.equal(r.fetchedBytes, r.totalBytes);
  });
});

test('an interrupted transfer is resumed with a Range request: only the rest is fetched', async () => {
  await withHub(async (hub, dest, source) => {
    const size = statSync(join(source, 'model.safetensors')).size;
    hub.cutAfter = 1000;
    const r = await downloadModel(REPO, dest, { hub: { endpoint: hub.endpoint } });
    const cdn = cdnBytes(hub);
    assert.equal(cdn.length, 2);
    assert.equal(cdn[0].range, undefined);
    assert.equal(cdn[1].range, 'bytes=1000-');
    assert.ok(readFileSync(join(r.dir, 'model.safetensors')).equals(readFileSync(join(source, 'model.safetensors'))));
    assert.ok(size > 1000);
    assert.ok(!existsSync(join(r.dir, 'model.safetensors.part')));
  });
});

test('sha256 mismatch: the file is not kept and the error says so', async () => {
  await withHub(async (hub, dest) => {
    hub.listedSha.set('model.safetensors', 'ab'.repeat(32));
    await assert.rejects(downloadModel(REPO, dest, { hub: { endpoint: hub.endpoint } }),
      (e: unknown) => e instanceof ModelDownloadError && e.kind === 'integrity' && /checksum mismatch.*sha256 differs.*was not kept/.test(e.message));
    const dir = join(dest, 'Tiny-VL');
    assert.ok(!existsSync(join(dir, 'model.safetensors')));
    assert.ok(!existsSync(join(dir, 'model.safetensors.part')));
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('model.safetensors')), [], 'no .part.json either');
  });
});

test('an unsupported model_type is refused before any weight is fetched', async () => {
  await withHub(async (hub, dest) => {
    const config = JSON.parse(hub.files.get('config.json')!.toString());
    config.model_type = 'llava';
    hub.files.set('config.json', Buffer.from(JSON.stringify(config)));
    await assert.rejects(downloadModel(REPO, dest, { hub: { endpoint: hub.endpoint } }),
      (e: unknown) => e instanceof ModelDownloadError && e.kind === 'unsupported' && /llava.*No weights were downloaded/s.test(e.message));
    assert.equal(cdnBytes(hub).length, 0);
    assert.ok(!hub.log.some((r) => r.path.endsWith('.safetensors')));
  });
});

test('the token goes to the hub only, never to the redirect host', async () => {
  await withHub(async (hub, dest) => {
    await downloadModel(REPO, dest, { hub: { endpoint: hub.endpoint, token: 'hf_secret' } });
    const fromHub = hub.log.filter((r) => r.server === 'hub');
    assert.ok(fromHub.length >= 3);
    assert.ok(fromHub.every((r) => r.authorization === 'Bearer hf_secret'));
    assert.ok(cdnBytes(hub).length > 0);
    assert.ok(cdnBytes(hub).every((r) => r.authorization === undefined));
  });
});

test('cancellation keeps the .part file and the next download resumes it', async () => {
  await withHub(async (hub, dest, source) => {
    hub.pauseAfter = 1500;
    const abort = new AbortController();
    const part = join(dest, 'Tiny-VL', 'model.safetensors.part');
    const running = downloadModel(REPO, dest, { hub: { endpoint: hub.endpoint }, signal: abort.signal });
    const t0 = Date.now();
    while (!(existsSync(part) && statSync(part).size === 1500)) {
      assert.ok(Date.now() - t0 < 10_000, 'the first 1500 bytes arrive');
      await new Promise((r) => setTimeout(r, 10));
    }
    abort.abort();
    await assert.rejects(running, (e: unknown) => e instanceof ModelDownloadError && e.kind === 'cancelled' && /\.part files are kept/.test(e.message));
    assert.equal(statSync(part).size, 1500);
    const r = await downloadModel(REPO, dest, { hub: { endpoint: hub.endpoint } });
    assert.equal(cdnBytes(hub).at(-1)!.range, 'bytes=1500-');
    assert.ok(readFileSync(join(r.dir, 'model.safetensors')).equals(readFileSync(join(source, 'model.safetensors'))));
    assert.ok(!existsSync(part));
  });
});

test('plain http to a host other than loopback is refused', async () => {
  await assert.rejects(downloadModel(REPO, tmpdir(), { hub: { endpoint: 'http://example.com' } }),
    (e: unknown) => e instanceof ModelDownloadError && /not https/.test(e.message));
});
