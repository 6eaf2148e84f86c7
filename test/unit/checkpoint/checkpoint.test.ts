import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectedWeightShapes, loadCheckpoint, normaliseWeightName, parseModelConfig } from '../../../server/src/engine/checkpoint';
import { readTensor } from '../../../server/src/engine/safetensors';
import { readFixture, rejects, tempDir, writeModelFolder, writeSparseModelFolder } from './helpers';

const NESTED = () => readFixture('tiny-qwen2-vl-nested.config.json');
const FLAT25 = () => readFixture('tiny-qwen2.5-vl-flat.config.json');

describe('loadCheckpoint', () => {
  it('loads a single-file tied Qwen2-VL checkpoint in the nested layout', () => {
    const dir = path.join(tempDir(), 'tiny');
    writeModelFolder(dir, NESTED(), { generationConfig: { eos_token_id: [2000, 1999], temperature: 0.01, top_k: 1 } });
    const ck = loadCheckpoint(dir);
    assert.equal(ck.dir, dir);
    assert.equal(ck.config.modelType, 'qwen2_vl');
    assert.deepEqual(ck.config.eosTokenIds, [2000, 1999]);
    assert.deepEqual(ck.generationConfig, { doSample: undefined, temperature: 0.01, topK: 1, topP: undefined, repetitionPenalty: undefined });
    assert.equal(ck.weightDtype, 'BF16');
    assert.equal(ck.needsLocalCopy, false);
    assert.equal(ck.weights.has('lm_head.weight'), false);
    // 2 LLM layers x 12 + embed + norm = 26; ViT: patch + 2 blocks x 12 + merger 6 = 31.
    assert.equal(ck.weights.size, 57);
    const embed = ck.weights.get('model.embed_tokens.weight')!;
    assert.deepEqual([...embed.shape], [2048, 64]);
    assert.equal(embed.file, path.join(dir, 'model.safetensors'));
    assert.equal(readTensor(ck.weights.get('model.norm.weight')!).length, 64);
    assert.equal(ck.preprocess.maxPixels, 12845056);
    assert.match(ck.fingerprint, /^[0-9a-f]{64}$/);
    assert.ok(ck.chatTemplate?.startsWith('{% set image_count'));
    assert.equal((ck.tokenizerJson.model as { type: string }).type, 'BPE');
    assert.equal(ck.tokenizerConfig.eos_token, '<|im_end|>');
  });

  it('exposes legacy names for checkpoints saved with model.language_model.* / model.visual.* names', () => {
    const dir = path.join(tempDir(), 'inmem');
    writeModelFolder(dir, NESTED(), { inMemoryNames: true });
    const ck = loadCheckpoint(dir);
    assert.ok(ck.weights.has('model.layers.1.self_attn.q_proj.bias'));
    assert.ok(ck.weights.has('visual.merger.mlp.2.weight'));
    assert.equal(ck.weights.get('visual.merger.mlp.2.weight')!.name, 'model.visual.merger.mlp.2.weight');
    assert.equal(normaliseWeightName('model.language_model.norm.weight'), 'model.norm.weight');
    assert.equal(normaliseWeightName('lm_head.weight'), 'lm_head.weight');
  });

  it('loads a sharded untied Qwen2.5-VL checkpoint through its index', () => {
    const dir = path.join(tempDir(), 'sharded');
    writeModelFolder(dir, FLAT25(), { shards: 3, dtype: 'F16' });
    const ck = loadCheckpoint(dir);
    assert.equal(ck.config.vision.family, 'qwen2_5_vl');
    assert.equal(ck.weightDtype, 'F16');
    const files = new Set([...ck.weights.values()].map((w) => path.basename(w.file)));
    assert.deepEqual([...files].sort(), ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    assert.deepEqual([...ck.weights.get('lm_head.weight')!.shape], [512, 64]);
    assert.ok(ck.weights.has('visual.blocks.3.mlp.down_proj.bias'));
    assert.ok(!ck.weights.has('visual.blocks.0.norm1.bias')); // RMSNorm has no bias.
  });

  it('requires lm_head.weight only when embeddings are untied', () => {
    const untied = path.join(tempDir(), 'untied');
    writeModelFolder(untied, FLAT25(), { omit: ['lm_head.weight'] });
    rejects(() => loadCheckpoint(untied), 'MissingWeights', 'lm_head.weight', 'Re-download');
    const tiedWithHead = path.join(tempDir(), 'tied');
    writeModelFolder(tiedWithHead, NESTED(), { extra: { 'lm_head.weight': [2048, 64] } });
    assert.ok(loadCheckpoint(tiedWithHead).config.text.tieWordEmbeddings);
  });

  it('takes widths from the weight shapes when the config is sparse or disagrees', () => {
    const dir = path.join(tempDir(), 'sparse');
    const cfg = NESTED();
    writeModelFolder(dir, cfg);
    // Strip the vision config to what a real Qwen2-VL checkpoint has: the class defaults
    // (embed_dim 1280, mlp_ratio 4, hidden_size 3584) are then all wrong for these weights.
    const vc = cfg.vision_config as Record<string, unknown>;
    cfg.vision_config = { depth: vc.depth, num_heads: vc.num_heads, in_chans: 3, spatial_patch_size: 14, model_type: 'qwen2_vl' };
    // And make the text config claim an explicit but wrong intermediate size.
    (cfg.text_config as Record<string, unknown>).intermediate_size = 100;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    const ck = loadCheckpoint(dir);
    assert.deepEqual([ck.config.vision.embedDim, ck.config.vision.mlpDim, ck.config.vision.outHidden], [32, 64, 64]);
    assert.equal(ck.config.text.intermediateSize, 128);
    // Only the explicit disagreement is worth a warning; replacing class defaults is expected.
    const overrides = ck.warnings.filter((w) => w.includes('implies'));
    assert.equal(overrides.length, 1);
    assert.match(overrides[0], /text\.intermediateSize = 100, but mlp\.gate_proj\.weight implies 128/);
  });

  it('accepts a full-size Qwen2-VL-2B header and finds all 729 expected weights', () => {
    const dir = path.join(tempDir(), 'qwen2-vl-2b');
    writeSparseModelFolder(dir, readFixture('qwen2-vl-2b-instruct.config.json'));
    const ck = loadCheckpoint(dir);
    // LLM: embed + 28 x 12 + norm = 338 (tied: no lm_head); ViT: patch + 32 x 12 + merger 6 = 391.
    assert.equal(ck.weights.size, 729);
    assert.deepEqual(ck.config, parseModelConfig(readFixture('qwen2-vl-2b-instruct.config.json')));
  });

  it('lists 824 weights for Qwen2.5-VL-3B (36 LLM layers, SwiGLU ViT blocks without norm biases)', () => {
    // LLM: 1 + 36 x 12 + 1 = 434; ViT: 1 + 32 x 12 + ln_q 1 + mlp 4 = 390.
    assert.equal(expectedWeightShapes(parseModelConfig(readFixture('qwen2.5-vl-3b-instruct.config.json'))).size, 824);
  });

  it('fingerprints the configs, the headers and the ends of every tensor: other weights, other fingerprint', () => {
    const dir = path.join(tempDir(), 'fp');
    writeModelFolder(dir, NESTED());
    const a = loadCheckpoint(dir).fingerprint;
    assert.equal(loadCheckpoint(dir).fingerprint, a);
    // Other weights with the same shapes (a fine-tune, a retrained model) must not share cached KV:
    // the last bytes of the file are the last tensor's end.
    const file = path.join(dir, 'model.safetensors');
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([1, 2, 3]), 0, 3, fs.statSync(file).size - 3);
    fs.closeSync(fd);
    const b = loadCheckpoint(dir).fingerprint;
    assert.notEqual(b, a);
    // ... and any config change alters it too.
    fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ max_pixels: 1003520 }));
    assert.notEqual(loadCheckpoint(dir).fingerprint, b);
  });

  it('flags weight files that are symlinks resolving outside the folder', () => {
    const root = tempDir();
    const blobs = path.join(root, 'blobs');
    writeModelFolder(blobs, NESTED());
    const snapshot = path.join(root, 'snapshots', 'rev');
    fs.mkdirSync(snapshot, { recursive: true });
    for (const f of fs.readdirSync(blobs)) fs.symlinkSync(path.join('..', '..', 'blobs', f), path.join(snapshot, f));
    assert.equal(loadCheckpoint(snapshot).needsLocalCopy, true);
    // A link that stays inside the folder is harmless.
    const inside = path.join(root, 'inside');
    writeModelFolder(inside, NESTED());
    fs.renameSync(path.join(inside, 'model.safetensors'), path.join(inside, 'real.safetensors'));
    fs.symlinkSync('real.safetensors', path.join(inside, 'model.safetensors'));
    assert.equal(loadCheckpoint(inside).needsLocalCopy, false);
  });

  it('prefers chat_template.jinja, then chat_template.json, then tokenizer_config.json', () => {
    const dir = path.join(tempDir(), 'tpl');
    writeModelFolder(dir, NESTED(), { tokenizerConfig: { chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D' }] } });
    assert.equal(loadCheckpoint(dir).chatTemplate, 'D');
    fs.writeFileSync(path.join(dir, 'chat_template.json'), JSON.stringify({ chat_template: 'J' }));
    assert.equal(loadCheckpoint(dir).chatTemplate, 'J');
    fs.writeFileSync(path.join(dir, 'chat_template.jinja'), 'K');
    assert.equal(loadCheckpoint(dir).chatTemplate, 'K');
    const none = path.join(tempDir(), 'none');
    writeModelFolder(none, NESTED(), { tokenizerConfig: {}, preprocessorConfig: null });
    const ck = loadCheckpoint(none);
    assert.equal(ck.chatTemplate, undefined);
    assert.ok(ck.warnings.some((w) => w.includes('preprocessor_config.json is missing')));
  });
});

describe('loadCheckpoint errors', () => {
  it('says when the folder does not exist', () => {
    const missing = path.join(tempDir(), 'nope');
    rejects(() => loadCheckpoint(missing), 'FolderMissing', missing, 'hf download');
  });

  it('says a folder without config.json is not a Hugging Face model folder and how to get one', () => {
    const dir = tempDir();
    rejects(() => loadCheckpoint(dir), 'NotAModelFolder',
      `${dir} is not a Hugging Face model folder: config.json is missing. Point --model at a folder downloaded with ` +
      '`hf download Qwen/Qwen2-VL-2B-Instruct --local-dir');
  });

  it('names the supported model types', () => {
    const dir = tempDir();
    writeModelFolder(dir, NESTED());
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...NESTED(), model_type: 'llava' }));
    rejects(() => loadCheckpoint(dir), 'UnsupportedModelType', '"llava"', 'qwen2_vl', 'qwen2_5_vl');
  });

  it('reports a missing tokenizer.json', () => {
    const dir = tempDir();
    writeModelFolder(dir, NESTED());
    fs.rmSync(path.join(dir, 'tokenizer.json'));
    rejects(() => loadCheckpoint(dir), 'TokenizerMissing', 'tokenizer.json', 'hf download');
  });

  it('reports a folder without weights, and shards without their index', () => {
    const dir = tempDir();
    writeModelFolder(dir, NESTED());
    fs.renameSync(path.join(dir, 'model.safetensors'), path.join(dir, 'model-00001-of-00002.safetensors'));
    rejects(() => loadCheckpoint(dir), 'NoWeights', 'model-00001-of-00002.safetensors', 'model.safetensors.index.json');
  });

  it('reports a model.safetensors link whose blob is missing', () => {
    const dir = tempDir();
    writeModelFolder(dir, NESTED());
    fs.rmSync(path.join(dir, 'model.safetensors'));
    fs.symlinkSync('../../blobs/0123abcd', path.join(dir, 'model.safetensors'));
    rejects(() => loadCheckpoint(dir), 'ShardMissing', 'target is missing', 'hf download');
  });

  it('reports a shard the index names but the folder lacks', () => {
    const dir = tempDir();
    writeModelFolder(dir, FLAT25(), { shards: 2 });
    fs.rmSync(path.join(dir, 'model-00002-of-00002.safetensors'));
    rejects(() => loadCheckpoint(dir), 'ShardMissing', 'model-00002-of-00002.safetensors', 'incomplete');
  });

  it('reports a weight the index lists that is missing from its shard', () => {
    const dir = tempDir();
    writeModelFolder(dir, FLAT25(), { shards: 2 });
    const indexFile = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
    index.weight_map['model.layers.7.mlp.up_proj.weight'] = 'model-00001-of-00002.safetensors';
    fs.writeFileSync(indexFile, JSON.stringify(index));
    rejects(() => loadCheckpoint(dir), 'WeightNotInShard', 'model.layers.7.mlp.up_proj.weight', 'model-00001-of-00002.safetensors');
  });

  it('reports corrupt and truncated safetensors with the file name', () => {
    const dir = tempDir();
    writeModelFolder(dir, NESTED());
    const file = path.join(dir, 'model.safetensors');
    fs.truncateSync(file, fs.statSync(file).size - 100);
    rejects(() => loadCheckpoint(dir), 'CorruptSafetensors', file, 'Re-download');
  });

  it('lists required weights that are missing', () => {
    const dir = tempDir();
    writeModelFolder(dir, NESTED(), { omit: ['model.layers.1.self_attn.k_proj.bias', 'visual.blocks.1.mlp.fc2.weight'] });
    rejects(() => loadCheckpoint(dir), 'MissingWeights', 'lacks 2 of the 57 weights',
      'model.layers.1.self_attn.k_proj.bias', 'visual.blocks.1.mlp.fc2.weight');
  });

  it('reports a weight whose shape contradicts the others', () => {
    const dir = tempDir();
    writeModelFolder(dir, NESTED(), { shapes: { 'model.layers.1.mlp.down_proj.weight': [64, 96] } });
    rejects(() => loadCheckpoint(dir), 'ShapeMismatch', 'model.layers.1.mlp.down_proj.weight', '[64, 96]', '[64, 128]');
  });

  it('reports a weight stored under both naming schemes', () => {
    const dir = tempDir();
    writeModelFolder(dir, NESTED(), { shards: 2 });
    writeModelFolder(path.join(dir, 'other'), NESTED(), { inMemoryNames: true });
    fs.renameSync(path.join(dir, 'other', 'model.safetensors'), path.join(dir, 'model-00003-of-00003.safetensors'));
    const indexFile = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
    index.weight_map['model.language_model.norm.weight'] = 'model-00003-of-00003.safetensors';
    fs.writeFileSync(indexFile, JSON.stringify(index));
    rejects(() => loadCheckpoint(dir), 'DuplicateWeight', 'stored twice');
  });
});
