/**
 * Golden tests against Hugging Face transformers 5.17 (fp32, eager attention)
 * on the tiny checkpoints and references made by make_golden.py.
 *
 * Tolerances, by precision:
 *   fp32 (CPU default; also WebGPU fp32): max |diff| <= 1e-3 for vision embeddings and <= 1e-4 for logits
 *     (measured on CPU: <= 7.3e-5 and <= 1.8e-5); pixel values bit-exact for every fixture, PNG, JPEG, GIF and
 *     WebP alike (the decoders reproduce Pillow 12.3 with libjpeg-turbo and libwebp, engine/image/decode.ts);
 *     12 greedy tokens identical. Every greedy step's top-1/top-2 margin is >= 2e-3 (make_golden.py
 *     --min-margin), 20x the logit tolerance, so equal tokens are not luck.
 *   fp16 (GPU default): max |diff| <= 3% of max |reference| for vision embeddings, 4% for the
 *     prompt's last logits and 8% for the logits of later greedy steps (compared only while the
 *     tokens still agree). These tiny models are initialised with std 0.3, so activations are large
 *     and fp16 rounding accumulates. Greedy tokens are reported, not asserted, because the tiny
 *     models' top-1/top-2 margins go down to 0.003, below fp16's error; the first one must agree.
 * Environment: VLCACHE_TEST_DEVICE (cpu | webgpu | cuda), VLCACHE_TEST_PRECISION (fp32 | fp16),
 * VLCACHE_TEST_ATTENTION (manual | mha | onnx; the device's default when unset),
 * VLCACHE_GOLDEN_REPORT=path writes every measured difference as JSON (for the README table).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint, loadCheckpoint } from '../../server/src/engine/checkpoint';
import { ChatTemplate, buildPrompt, userTurn } from '../../server/src/engine/chat-template';
import { Generator } from '../../server/src/ask/generate';
import { toPixelValues } from '../../server/src/engine/image/patches';
import { preprocessImage } from '../../server/src/engine/image/preprocess';
import { type AttentionKind, VlModel } from '../../server/src/engine/model';
import type { Device } from '../../server/src/engine/ort';
import { ropePositions } from '../../server/src/engine/positions';
import { readSafetensorsHeader, readTensor, TensorEntry } from '../../server/src/engine/safetensors';
import { Tokenizer } from '../../server/src/engine/tokenizer';
import { visionInputs } from '../../server/src/engine/vision-inputs';

const FIX = join(__dirname, 'fixtures');
const device = (process.env.VLCACHE_TEST_DEVICE ?? 'cpu') as Device;
const precision = (process.env.VLCACHE_TEST_PRECISION ?? (device === 'cpu' ? 'fp32' : 'fp16')) as 'fp32' | 'fp16';
const attention = (process.env.VLCACHE_TEST_ATTENTION || undefined) as AttentionKind | undefined;
const TOL = 1e-3;
const LOGIT_TOL = 1e-4;
const REL_TOL = { vision: 0.03, logits_last: 0.04, gen_logits: 0.08 };
const report: Record<string, unknown> = { device, precision, attention: attention ?? 'default', tolerance: precision === 'fp32' ? { vision: TOL, logits: LOGIT_TOL } : REL_TOL };

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length, 'length');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

interface Case {
  images: string[];
  question: string;
  input_ids: number[];
  position_ids: number[][];
  rope_delta: number;
  greedy_tokens: number[];
  gen_logits_steps_stored: number;
  image_grid_thw?: number[][];
}

describe('preprocessing vs Qwen2VLImageProcessorPil', () => {
  const meta = json(join(FIX, 'images', 'preprocessed.json'));
  for (const [name, m] of Object.entries<Record<string, any>>(meta.images)) {
    it(`gives bit-identical pixel_values for ${m.file} (${m.width}x${m.height} ${m.mode})`, async () => {
      const bytes = readFileSync(join(FIX, 'images', m.file));
      const cfg = loadCheckpoint(join(FIX, 'qwen2vl-tiny')).preprocess;
      const p = await preprocessImage(bytes, { ...cfg, minPixels: meta.min_pixels, maxPixels: meta.max_pixels }, { name });
      assert.deepEqual([...p.gridThw], m.grid_thw);
      const pv = toPixelValues(p.resized, cfg, cfg); // the host reference of the vision graph's in-graph patchify
      const digest = createHash('sha256').update(new Uint8Array(pv.buffer, pv.byteOffset, pv.byteLength)).digest('hex');
      assert.equal(digest, m.pixel_values_sha256_f32le);
    });
  }
});

describe('tokenizer vs tokenizers (Python)', () => {
  const t = json(join(FIX, 'tokenizer_cases.json'));
  const tok = new Tokenizer(json(join(FIX, 'qwen2vl-tiny', 'tokenizer.json')), json(join(FIX, 'qwen2vl-tiny', 'tokenizer_config.json')));
  for (const c of t.cases as { text: string; ids: number[]; decoded: string; decoded_skip_special: string }[]) {
    it(`encodes and decodes ${JSON.stringify(c.text.slice(0, 40))}`, () => {
      assert.deepEqual(tok.encode(c.text), c.ids);
      assert.equal(tok.decode(c.ids), c.decoded);
      assert.equal(tok.decode(c.ids, { skipSpecialTokens: true }), c.decoded_skip_special);
    });
  }
});

for (const name of ['qwen2vl-tiny', 'qwen25vl-tiny']) {
  describe(`${name} vs transformers on ${device} (${precision})`, () => {
    const dir = join(FIX, name);
    const cases: Record<string, Case> = json(join(dir, 'cases.json')).cases;
    let ckpt: Checkpoint;
    let model: VlModel;
    let gen: Generator;
    let ref: Map<string, TensorEntry>;
    const r: Record<string, Record<string, number>> = {};
    report[name] = r;
    before(async () => {
      process.env.VLCACHE_HOME ??= mkdtempSync(join(tmpdir(), 'vlcache-golden-'));
      ckpt = loadCheckpoint(dir);
      model = await VlModel.load(ckpt, { device, precision, attention });
      gen = new Generator(model);
      ref = new Map(readSafetensorsHeader(join(dir, 'reference.safetensors')).tensors.map((t) => [t.name, t]));
    });
    after(async () => model?.dispose());
    const tensor = (n: string) => readTensor(ref.get(n) ?? assert.fail(`reference has no ${n}`));

    for (const [cname, c] of Object.entries(cases)) {
      it(`${cname}: same prompt ids, positions, vision embeddings, logits and 12 greedy tokens`, async () => {
        const images = c.images.map((f) => ({ name: f, bytes: readFileSync(join(FIX, 'images', f)) }));
        const pre = await Promise.all(images.map((im) => preprocessImage(im.bytes, ckpt.preprocess)));
        assert.deepEqual(pre.map((p) => [...p.gridThw]), c.image_grid_thw ?? []);
        // Prompt ids and M-RoPE positions.
        const tok = gen.tokenizer;
        const prompt = buildPrompt({
          template: ChatTemplate.create(ckpt.chatTemplate, ckpt.tokenizerConfig), tokenizer: tok,
          messages: [userTurn(images.length, c.question)],
          imageGrids: pre.map((p) => ({ gridT: p.gridThw[0], gridH: p.gridThw[1], gridW: p.gridThw[2] })),
          mergeSize: 2, imageTokenId: ckpt.config.imageTokenId,
        });
        assert.deepEqual(prompt.tokenIds, c.input_ids);
        const pos = ropePositions(prompt.tokenIds.length,
          pre.map((p, i) => ({ row0: prompt.imageSpans[i].start, h: p.gridThw[1] / 2, w: p.gridThw[2] / 2 })));
        assert.deepEqual([0, 1, 2].map((s) => Array.from(pos.data.slice(s * pos.n, (s + 1) * pos.n))), c.position_ids);
        assert.equal(pos.ropeDelta, c.rope_delta);
        // Vision embeddings, one image at a time.
        const m: Record<string, number> = {};
        const scale: Record<string, number> = {};
        const maxAbs = (v: Float32Array) => v.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
        for (let k = 0; k < pre.length; k++) {
          const emb = await model.encodeImage(visionInputs(ckpt.config.vision, ckpt.preprocess, pre[k].resized));
          const want = tensor(`${cname}.vision.${k}`);
          m[`vision_${k}`] = maxAbsDiff(emb, want);
          scale[`vision_${k}`] = maxAbs(want);
        }
        // Logits of the prompt's last row and of the first greedy steps; 12 greedy tokens.
        const genLogits = tensor(`${cname}.gen_logits`);
        const vocab = ckpt.config.text.vocabSize;
        const stepDiffs: number[] = [];
        const produced: number[] = [];
        const sameSoFar = (step: number) => produced.slice(0, step).every((t, i) => t === c.greedy_tokens[i]);
        // No `alpha`: the defaults (preprocessImage's and the Generator's) must be what transformers does.
        const res = await gen.ask({
          images, question: c.question, maxTokens: c.greedy_tokens.length, ignoreEos: true,
          onToken: (id) => produced.push(id),
          onLogits: (step, logits) => {
            if (step === 0) m.logits_last = maxAbsDiff(logits, tensor(`${cname}.logits_last`));
            // After a token differs, later logits belong to another context: stop comparing.
            if (step < c.gen_logits_steps_stored && step === stepDiffs.length && sameSoFar(step)) {
              stepDiffs.push(maxAbsDiff(logits, genLogits.subarray(step * vocab, (step + 1) * vocab)));
            }
          },
        });
        m.gen_logits = Math.max(...stepDiffs);
        scale.logits_last = scale.gen_logits = maxAbs(tensor(`${cname}.logits_last`));
        const agree = res.tokenIds.findIndex((t, i) => t !== c.greedy_tokens[i]);
        m.greedy_tokens_agreeing = agree < 0 ? c.greedy_tokens.length : agree;
        r[cname] = m;
        assert.deepEqual(res.promptTokenIds, c.input_ids);
        for (const k of Object.keys(scale)) {
          const rel = k.startsWith('vision') ? REL_TOL.vision : k === 'logits_last' ? REL_TOL.logits_last : REL_TOL.gen_logits;
          const limit = precision === 'fp32' ? (k.startsWith('vision') ? TOL : LOGIT_TOL) : rel * scale[k];
          assert.ok(m[k] <= limit, `${k}: max |diff| ${m[k]} > ${limit}`);
        }
        if (precision === 'fp32') assert.deepEqual(res.tokenIds, c.greedy_tokens);
        else assert.equal(res.tokenIds[0], c.greedy_tokens[0], 'first greedy token');
      });
    }
  });
}

describe('built-in model demo vs transformers', () => {
  const demoFile = join(FIX, 'builtin-demo.json');
  it('gives the reference greedy tokens on media/samples/diagram.png', async () => {
    // A missing fixture is a failure (readFileSync throws), never a skip: make_golden.py writes it.
    const demo = json(demoFile);
    const root = join(__dirname, '..', '..');
    const ckpt = loadCheckpoint(join(root, demo.model_dir));
    const model = await VlModel.load(ckpt, { device, precision, attention });
    try {
      const res = await new Generator(model).ask({
        images: [{ name: 'diagram.png', bytes: readFileSync(join(root, demo.image)) }], question: demo.question,
        maxTokens: demo.greedy_tokens.length, ignoreEos: true,
      });
      assert.deepEqual(res.promptTokenIds, demo.input_ids);
      if (precision === 'fp32') assert.deepEqual(res.tokenIds, demo.greedy_tokens);
      else assert.equal(res.tokenIds[0], demo.greedy_tokens[0]);
    } finally {
      await model.dispose();
    }
  });
});

after(() => {
  if (process.env.VLCACHE_GOLDEN_REPORT) writeFileSync(process.env.VLCACHE_GOLDEN_REPORT, JSON.stringify(report, null, 1));
});
