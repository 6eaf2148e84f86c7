/**
 * Generation on the real CPU provider with random checkpoints: weight dtypes read in
 * place give the same numbers, cancellation stops between steps, sampling repeats
 * with a seed, and the chat prompt puts images before the question.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { loadCheckpoint } from '../../../server/src/engine/checkpoint';
import { AskRequest, Generator } from '../../../server/src/ask/generate';
import { VlModel } from '../../../server/src/engine/model';
import { writeRandomCheckpoint } from '../../support/random-checkpoint';

function png(w: number, h: number): Uint8Array {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < p.data.length; i++) p.data[i] = (i * 31 + 7) & 0xff;
  return PNG.sync.write(p);
}

describe('generation (random weights, CPU)', () => {
  let tmp: string;
  const image = { name: 'a.png', bytes: png(60, 44) };
  const ask = async (dir: string, req: Partial<AskRequest> = {}) => {
    const model = await VlModel.load(loadCheckpoint(dir), { device: 'cpu' });
    try {
      const logits: Float32Array[] = [];
      const res = await new Generator(model).ask({
        images: [image], question: 'What is this?', maxTokens: 6, ignoreEos: true,
        onLogits: (_, l) => logits.push(l.slice()), ...req,
      });
      return { res, logits };
    } finally {
      await model.dispose();
    }
  };

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'vlcache-gen-'));
    process.env.VLCACHE_HOME = join(tmp, 'home');
    for (const dtype of ['F32', 'BF16', 'F16'] as const) {
      writeRandomCheckpoint(join(tmp, dtype), { family: 'qwen2_5_vl', dtype, bf16Values: true, seed: 5 });
    }
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('reads bf16, fp16 and fp32 weight files of the same values to the same logits and tokens', async () => {
    const ref = await ask(join(tmp, 'F32'));
    for (const dtype of ['BF16', 'F16']) {
      const other = await ask(join(tmp, dtype));
      assert.deepEqual(other.res.tokenIds, ref.res.tokenIds, dtype);
      const d = other.logits[0].reduce((m, v, i) => Math.max(m, Math.abs(v - ref.logits[0][i])), 0);
      assert.ok(d < 1e-4, `${dtype}: ${d}`);
    }
  });

  it('stops between steps when cancelled and returns what it generated', async () => {
    const controller = new AbortController();
    const { res } = await ask(join(tmp, 'F32'), {
      maxTokens: 50, signal: controller.signal, onToken: () => controller.abort(),
    });
    assert.equal(res.stopReason, 'cancelled');
    assert.equal(res.tokenIds.length, 1);
  });

  it('repeats a sampled answer with the same seed', async () => {
    const sampling = { temperature: 0.9, topP: 0.9, seed: 42 };
    const a = await ask(join(tmp, 'F32'), { sampling, maxTokens: 8 });
    const b = await ask(join(tmp, 'F32'), { sampling, maxTokens: 8 });
    assert.deepEqual(a.res.tokenIds, b.res.tokenIds);
  });

  it('puts the image tokens before the question and reports the image grid', async () => {
    const { res } = await ask(join(tmp, 'F32'), { maxTokens: 1 });
    const firstImage = res.promptTokenIds.indexOf(290);
    assert.ok(firstImage > 0);
    // 60x44 -> smart_resize 56x56 -> a 4x4 patch grid -> 2x2 merged = 4 image tokens.
    assert.deepEqual(res.images[0].grid, [1, 4, 4]);
    assert.equal(res.images[0].tokens, 4);
  });
});
