import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseModelConfig, parsePreprocessConfig } from '../../../server/src/engine/checkpoint';
import type { ModelConfig } from '../../../server/src/engine/config';
import { readFixture, rejects } from './helpers';

const QWEN_IDS = { imageTokenId: 151655, videoTokenId: 151656, visionStartTokenId: 151652, visionEndTokenId: 151653 };

describe('parseModelConfig', () => {
  it('reads the flat Qwen2-VL-2B-Instruct config, filling the sparse vision_config with class defaults', () => {
    const expected: ModelConfig = {
      modelType: 'qwen2_vl',
      text: {
        hiddenSize: 1536, numLayers: 28, numHeads: 12, numKvHeads: 2, headDim: 128, intermediateSize: 8960,
        vocabSize: 151936, rmsNormEps: 1e-6, ropeTheta: 1e6, mropeSection: [16, 24, 24],
        maxPositionEmbeddings: 32768, tieWordEmbeddings: true,
      },
      vision: {
        family: 'qwen2_vl', depth: 32, embedDim: 1280, numHeads: 16, mlpDim: 5120, hiddenAct: 'quick_gelu',
        // Qwen2-VL's vision hidden_size is the merger output (= the LLM width).
        outHidden: 1536, patchSize: 14, temporalPatchSize: 2, spatialMergeSize: 2, inChannels: 3,
        windowSize: 0, fullAttBlockIndexes: [], normEps: 1e-6,
      },
      ...QWEN_IDS,
      eosTokenIds: [151645],
    };
    assert.deepEqual(parseModelConfig(readFixture('qwen2-vl-2b-instruct.config.json')), expected);
  });

  it('reads the flat Qwen2.5-VL-3B-Instruct config, where vision hidden_size is the ViT width', () => {
    const c = parseModelConfig(readFixture('qwen2.5-vl-3b-instruct.config.json'));
    assert.deepEqual(c.text, {
      hiddenSize: 2048, numLayers: 36, numHeads: 16, numKvHeads: 2, headDim: 128, intermediateSize: 11008,
      vocabSize: 151936, rmsNormEps: 1e-6, ropeTheta: 1e6, mropeSection: [16, 24, 24],
      maxPositionEmbeddings: 128000, tieWordEmbeddings: true,
    });
    assert.deepEqual(c.vision, {
      family: 'qwen2_5_vl', depth: 32, embedDim: 1280, numHeads: 16, mlpDim: 3420, hiddenAct: 'silu',
      outHidden: 2048, patchSize: 14, temporalPatchSize: 2, spatialMergeSize: 2, inChannels: 3,
      windowSize: 112, fullAttBlockIndexes: [7, 15, 23, 31], normEps: 1e-6,
    });
    assert.equal(c.modelType, 'qwen2_5_vl');
  });

  it('reads the nested transformers-5 layout (text_config with rope_parameters)', () => {
    const c = parseModelConfig(readFixture('tiny-qwen2-vl-nested.config.json'), { eos_token_id: [7, 9, 7] });
    assert.deepEqual(c.text, {
      hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128,
      vocabSize: 2048, rmsNormEps: 1e-6, ropeTheta: 1e6, mropeSection: [2, 3, 3],
      maxPositionEmbeddings: 4096, tieWordEmbeddings: true,
    });
    assert.deepEqual(c.vision, {
      family: 'qwen2_vl', depth: 2, embedDim: 32, numHeads: 4, mlpDim: 64, hiddenAct: 'quick_gelu',
      outHidden: 64, patchSize: 14, temporalPatchSize: 2, spatialMergeSize: 2, inChannels: 3,
      windowSize: 0, fullAttBlockIndexes: [], normEps: 1e-6,
    });
    assert.deepEqual([c.imageTokenId, c.videoTokenId, c.visionStartTokenId, c.visionEndTokenId], [2001, 2002, 2003, 2004]);
    // A list of eos ids from generation_config.json is kept in order without duplicates.
    assert.deepEqual(c.eosTokenIds, [7, 9]);
  });

  it('applies the Qwen2-VL vision class defaults, including hidden_size 3584, when vision_config is absent', () => {
    const raw: Record<string, unknown> = { ...readFixture('qwen2-vl-2b-instruct.config.json'), hidden_size: 3584, num_attention_heads: 28 };
    delete raw.vision_config;
    const v = parseModelConfig(raw).vision;
    assert.deepEqual([v.depth, v.embedDim, v.numHeads, v.mlpDim, v.outHidden, v.hiddenAct], [32, 1280, 16, 5120, 3584, 'quick_gelu']);
  });

  it('applies the Qwen2.5-VL vision class defaults (ViT width 3584, merger 3584, windows)', () => {
    const raw: Record<string, unknown> = { ...readFixture('qwen2.5-vl-3b-instruct.config.json'), hidden_size: 3584, num_attention_heads: 28 };
    raw.vision_config = { in_chans: 3, spatial_patch_size: 14, model_type: 'qwen2_5_vl' };
    const v = parseModelConfig(raw).vision;
    assert.deepEqual(
      [v.depth, v.embedDim, v.mlpDim, v.numHeads, v.outHidden, v.windowSize, v.fullAttBlockIndexes, v.hiddenAct],
      [32, 3584, 3420, 16, 3584, 112, [7, 15, 23, 31], 'silu']);
  });

  it('uses text class defaults for optional fields and config eos ids without generation_config', () => {
    const raw = readFixture('qwen2-vl-2b-instruct.config.json');
    delete raw.rms_norm_eps;
    delete raw.rope_theta;
    delete raw.num_key_value_heads;
    raw.eos_token_id = [151645, 151643];
    const c = parseModelConfig(raw);
    assert.equal(c.text.rmsNormEps, 1e-5);
    assert.equal(c.text.ropeTheta, 1e6);
    assert.equal(c.text.numKvHeads, 12); // Falls back to num_attention_heads, as in transformers.
    assert.deepEqual(c.eosTokenIds, [151645, 151643]);
    // generation_config.json's single id wins over config.json's list.
    assert.deepEqual(parseModelConfig(raw, { eos_token_id: 151643 }).eosTokenIds, [151643]);
  });

  it('rejects unsupported model types, naming the supported ones', () => {
    rejects(() => parseModelConfig({ ...readFixture('qwen2-vl-2b-instruct.config.json'), model_type: 'qwen3_vl' }),
      'UnsupportedModelType', '"qwen3_vl"', '"qwen2_vl" and "qwen2_5_vl"');
  });

  it('rejects missing counts, bad values, rope scaling and inconsistent mrope sections', () => {
    const base = readFixture('qwen2-vl-2b-instruct.config.json');
    const without = { ...base };
    delete without.num_hidden_layers;
    rejects(() => parseModelConfig(without), 'InvalidConfig', 'text.numLayers', 'missing');
    rejects(() => parseModelConfig({ ...base, hidden_size: '1536' }), 'InvalidConfig', 'text.hiddenSize', '"1536"');
    rejects(() => parseModelConfig({ ...base, rope_scaling: { type: 'yarn', factor: 4 } }), 'InvalidConfig', '"yarn"');
    rejects(() => parseModelConfig({ ...base, rope_scaling: { type: 'mrope', mrope_section: [16, 24, 16] } }),
      'InvalidConfig', 'sums to 56');
    rejects(() => parseModelConfig({ ...base, vision_config: { hidden_size: 2048 } }), 'InvalidConfig',
      'merger outputs 2048', '1536 wide');
  });
});

describe('parsePreprocessConfig', () => {
  const defaults = {
    minPixels: 3136, maxPixels: 12845056, patchSize: 14, temporalPatchSize: 2, mergeSize: 2,
    imageMean: [0.48145466, 0.4578275, 0.40821073], imageStd: [0.26862954, 0.26130258, 0.27577711], rescaleFactor: 1 / 255,
  };

  it('gives the Qwen2-VL defaults for a missing file', () => {
    assert.deepEqual(parsePreprocessConfig(undefined), defaults);
  });

  it('accepts min_pixels/max_pixels and size {shortest_edge, longest_edge}, preferring the former', () => {
    assert.deepEqual(parsePreprocessConfig({ min_pixels: 1000, max_pixels: 2000 }), { ...defaults, minPixels: 1000, maxPixels: 2000 });
    assert.deepEqual(parsePreprocessConfig({ size: { shortest_edge: 3000, longest_edge: 4000 } }),
      { ...defaults, minPixels: 3000, maxPixels: 4000 });
    assert.deepEqual(parsePreprocessConfig({ min_pixels: 1000, size: { shortest_edge: 3000, longest_edge: 4000 } }),
      { ...defaults, minPixels: 1000, maxPixels: 4000 });
  });

  it('rejects inverted limits and malformed normalisation constants', () => {
    rejects(() => parsePreprocessConfig({ min_pixels: 5000, max_pixels: 4000 }), 'InvalidConfig', 'exceeds');
    rejects(() => parsePreprocessConfig({ image_mean: [0.5, 0.5] }), 'InvalidConfig', 'image_mean');
  });
});
