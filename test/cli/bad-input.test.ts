/**
 * The CLI as a user runs it (a spawned `node dist/cli.js`): bad input gets one
 * clear, actionable line on stderr and exit code 2, never a stack trace.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { writeRandomCheckpoint } from '../support/random-checkpoint';

const root = resolve(__dirname, '../..');
const cli = join(root, 'dist', 'cli.js');

function vlcache(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function png(width: number, height: number): Buffer {
  const p = new PNG({ width, height });
  for (let i = 0; i < p.data.length; i++) p.data[i] = (i * 37) & 0xff;
  return PNG.sync.write(p);
}

describe('vlcache ask with bad input', () => {
  let tmp: string;
  let model: string;
  let env: Record<string, string>;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'vlcache-cli-'));
    env = { VLCACHE_HOME: join(tmp, 'home') };
    model = join(tmp, 'model');
    writeRandomCheckpoint(model, { family: 'qwen2_vl', tied: true });
    writeFileSync(join(tmp, 'ok.png'), png(56, 56));
  });

  const expectError = (r: { code: number; stderr: string }, pattern: RegExp) => {
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at .*\.[jt]s:\d+/, 'no JavaScript stack trace');
  };

  it('names the missing model folder and how to get one', () => {
    expectError(vlcache(['ask', '--model', join(tmp, 'nope'), 'hi'], env), /does not exist.*hf download/s);
  });

  it('names the missing config.json', () => {
    expectError(vlcache(['ask', '--model', tmp, 'hi'], env), /config\.json is missing/);
  });

  it('rejects an unsupported model_type by name', () => {
    const dir = join(tmp, 'llama');
    cpSync(model, dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'llama' }));
    expectError(vlcache(['ask', '--model', dir, 'hi'], env), /llama/);
  });

  it('reports a truncated safetensors file and says to re-download', () => {
    const dir = join(tmp, 'truncated');
    cpSync(model, dir, { recursive: true });
    const f = join(dir, 'model.safetensors');
    truncateSync(f, Math.floor(statSync(f).size / 2));
    expectError(vlcache(['ask', '--model', dir, 'hi'], env), /model\.safetensors.*(truncated|corrupt|download)/is);
  });

  it('says a file that is not an image is not an image', () => {
    writeFileSync(join(tmp, 'page.png'), '<html><body>404</body></html>');
    expectError(vlcache(['ask', '--model', model, '--image', join(tmp, 'page.png'), 'hi'], env), /not an image/);
  });

  it('rejects an image more than 200 times wider than tall', () => {
    writeFileSync(join(tmp, 'strip.png'), png(600, 2));
    expectError(vlcache(['ask', '--model', model, '--image', join(tmp, 'strip.png'), 'hi'], env), /200/);
  });

  it('rejects a zero-byte image', () => {
    writeFileSync(join(tmp, 'empty.png'), '');
    expectError(vlcache(['ask', '--model', model, '--image', join(tmp, 'empty.png'), 'hi'], env), /empty|no bytes/i);
  });

  it('names a missing image file', () => {
    expectError(vlcache(['ask', '--model', model, '--image', join(tmp, 'missing.png'), 'hi'], env), /no such image file/);
  });

  it('refuses a prompt longer than the context', () => {
    const dir = join(tmp, 'shortctx');
    cpSync(model, dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    cfg.text_config.max_position_embeddings = 64;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    expectError(vlcache(['ask', '--model', dir, '--image', join(tmp, 'ok.png'), 'x'.repeat(200)], env), /context is 64/);
  });

  it('says when a requested GPU device is unavailable, and auto falls back to the CPU saying so', () => {
    const gpu = vlcache(['ask', '--model', model, '--device', 'webgpu', '--max-tokens', '2', '--json', 'hi'], env);
    const auto = vlcache(['ask', '--model', model, '--max-tokens', '2', 'hi'], env);
    assert.equal(auto.code, 0, auto.stderr);
    const autoDevice = /^device: (.*)$/m.exec(auto.stderr)?.[1];
    if (gpu.code === 0) {
      // A machine with a working GPU adapter: webgpu answers on it, and auto does not settle for the CPU.
      assert.equal(JSON.parse(gpu.stdout).device, 'webgpu');
      assert.match(autoDevice ?? '', /^(cuda|webgpu)\b/, auto.stderr);
    } else {
      // No GPU (CI): webgpu fails with a clear message; auto answers on the CPU and names what it skipped.
      expectError(gpu, /webgpu device is not available/);
      assert.match(autoDevice ?? '', /^cpu \(skipped .*webgpu/, auto.stderr);
    }
  });

  it('answers with --json carrying text, ids, top logits, device and timings', () => {
    copyFileSync(join(tmp, 'ok.png'), join(tmp, 'ok2.png'));
    const r = vlcache(['ask', '--model', model, '--device', 'cpu', '--image', join(tmp, 'ok.png'), '--image', join(tmp, 'ok2.png'),
      '--max-tokens', '5', '--ignore-eos', '--json', 'What is this?'], env);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.token_ids.length, 5);
    assert.equal(j.logits_top.length, 10);
    assert.equal(j.device, 'cpu');
    assert.equal(j.images.length, 2);
    for (const k of ['preprocess_ms', 'vision_ms', 'prefill_ms', 'ttft_ms', 'decode_tokens_per_s']) assert.equal(typeof j.timings[k], 'number');
  });
});

describe('vlcache ask with hostile input', () => {
  let tmp: string;
  let model: string;
  let env: Record<string, string>;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'vlcache-cli-hostile-'));
    env = { VLCACHE_HOME: join(tmp, 'home') };
    model = join(tmp, 'model');
    writeRandomCheckpoint(model, { family: 'qwen2_vl', tied: true });
  });

  it('answers a 30,000-character question with the context error, not a crash (it exited with 139)', () => {
    // ONNX Runtime's start overflowed the stack on a long command line; the CLI re-runs itself with a short one.
    const r = vlcache(['ask', '--model', model, '--device', 'cpu', '--no-cache', '--max-tokens', '1', `What is ${'x'.repeat(30_000)}?`], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /the prompt is \d+ tokens but the model's context is \d+/);
  });

  it('refuses a FIFO as an image at once instead of hanging', () => {
    const fifo = join(tmp, 'pipe.png');
    spawnSync('mkfifo', [fifo]);
    const r = vlcache(['ask', '--model', model, '--device', 'cpu', '--no-cache', '--image', fifo, 'hi'], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /pipe\.png is not a regular file/);
  });
});
