/**
 * `vlcache model download` as a user runs it, in a child process, against the local hub
 * (HF_ENDPOINT): progress on stderr, the folder on stdout, HF_TOKEN sent to the hub only,
 * a second run fetches no weights; usage errors exit 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeRandomCheckpoint } from '../../support/random-checkpoint';
import { loadCheckpoint } from '../../../server/src/engine/checkpoint';
import { startLocalHub } from './local-hub';

const ROOT = resolve(__dirname, '../../..');

function vlcache(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'server/src/cli/main.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 },
      (err, stdout, stderr) => done({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout, stderr }));
  });
}

test('vlcache model download from HF_ENDPOINT with HF_TOKEN, then again with nothing to fetch', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vlc-model-cli-'));
  writeRandomCheckpoint(join(tmp, 'source'), { family: 'qwen2_5_vl' });
  const hub = await startLocalHub('Qwen/Tiny-VL', join(tmp, 'source'));
  try {
    const env = { HF_ENDPOINT: hub.endpoint, HF_TOKEN: 'hf_cli' };
    const r = await vlcache(['model', 'download', 'Qwen/Tiny-VL', '--dest', join(tmp, 'models')], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), join(tmp, 'models', 'Tiny-VL'));
    assert.match(r.stderr, /\(100%\) model\.safetensors/);
    assert.match(r.stderr, /\(qwen2_5_vl\): \d+ files checked/);
    assert.equal(loadCheckpoint(r.stdout.trim()).config.modelType, 'qwen2_5_vl');
    assert.ok(hub.log.filter((q) => q.server === 'hub').every((q) => q.authorization === 'Bearer hf_cli'));
    assert.ok(hub.log.filter((q) => q.server === 'cdn').every((q) => q.authorization === undefined));

    const cdnBefore = hub.log.filter((q) => q.server === 'cdn').length;
    const again = await vlcache(['model', 'download', 'Qwen/Tiny-VL', '--dest', join(tmp, 'models')], env);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(hub.log.filter((q) => q.server === 'cdn').length, cdnBefore, 'verified weights are not fetched again');

    const usage = await vlcache(['model', 'fetch', 'x'], env);
    assert.equal(usage.code, 2);
    const bad = await vlcache(['model', 'download', '../etc'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not a Hugging Face model id/);
  } finally {
    await hub.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
