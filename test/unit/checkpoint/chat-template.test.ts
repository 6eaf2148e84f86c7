import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  ChatTemplate, QWEN2_VL_CHAT_TEMPLATE, buildPrompt, imageTokenCount, userTurn,
} from '../../../server/src/engine/chat-template';
import { CheckpointError } from '../../../server/src/engine/errors';
import { Tokenizer } from '../../../server/src/engine/tokenizer';
import { readFixture } from './helpers';

const tokenizerConfig = readFixture('tokenizer_config.json');
const tokenizer = new Tokenizer(readFixture('tokenizer.json'), tokenizerConfig);
const shipped = ChatTemplate.create(tokenizerConfig.chat_template as string, tokenizerConfig);

// The Qwen2-VL prompt format (research/qwen2vl.md section 4.4) with two images.
const TWO_IMAGES =
  '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
  '<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>' +
  'What differs between these images?<|im_end|>\n' +
  '<|im_start|>assistant\n';

describe('ChatTemplate', () => {
  it('renders a two-image question in the Qwen2-VL format', () => {
    assert.equal(shipped.render([userTurn(2, 'What differs between these images?')]), TWO_IMAGES);
    assert.equal(shipped.isFallback, false);
  });

  it('keeps a given system turn, plain-text content and earlier assistant turns', () => {
    const text = shipped.render([
      { role: 'system', content: 'Be brief.' },
      userTurn(1, 'What is this?'),
      { role: 'assistant', content: [{ type: 'text', text: 'A cat.' }] },
      { role: 'user', content: 'And its colour?' },
    ]);
    assert.equal(text,
      '<|im_start|>system\nBe brief.<|im_end|>\n' +
      '<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is this?<|im_end|>\n' +
      '<|im_start|>assistant\nA cat.<|im_end|>\n' +
      '<|im_start|>user\nAnd its colour?<|im_end|>\n<|im_start|>assistant\n');
  });

  it('numbers pictures with addVisionId and can omit the generation prompt', () => {
    const text = shipped.render([userTurn(2, 'Compare.')], { addVisionId: true, addGenerationPrompt: false });
    assert.ok(text.includes('Picture 1: <|vision_start|><|image_pad|><|vision_end|>Picture 2: <|vision_start|>'));
    assert.ok(text.endsWith('Compare.<|im_end|>\n'));
  });

  it('falls back to the built-in Qwen2-VL template, with a log line, only when the checkpoint has none', () => {
    const lines: string[] = [];
    const fallback = ChatTemplate.create(undefined, tokenizerConfig, (l) => lines.push(l));
    assert.equal(fallback.isFallback, true);
    assert.equal(fallback.source, QWEN2_VL_CHAT_TEMPLATE);
    assert.equal(fallback.render([userTurn(2, 'What differs between these images?')]), TWO_IMAGES);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /no chat template; using the built-in Qwen2-VL-Instruct template/);
    ChatTemplate.create('{{ "x" }}', tokenizerConfig, (l) => lines.push(l));
    assert.equal(lines.length, 1);
  });

  it('exposes tokenizer_config special tokens and reports template errors as CheckpointError', () => {
    assert.equal(ChatTemplate.create('{{ eos_token }}', tokenizerConfig).render([]), '<|im_end|>');
    const raising = ChatTemplate.create("{{ raise_exception('no images allowed') }}", tokenizerConfig);
    assert.throws(() => raising.render([]), (e: unknown) => e instanceof CheckpointError && e.code === 'ChatTemplate'
      && e.message.includes('no images allowed'));
    assert.throws(() => ChatTemplate.create('{% for %}', tokenizerConfig), (e: unknown) => e instanceof CheckpointError
      && e.code === 'ChatTemplate');
  });
});

describe('buildPrompt', () => {
  it('expands each image pad to gridT*gridH*gridW/merge^2 tokens and reports their ranges', () => {
    // A 1x4x6 grid is 24 patches = 6 merged tokens; a 1x8x8 grid is 64 patches = 16 tokens.
    const grids = [{ gridT: 1, gridH: 4, gridW: 6 }, { gridT: 1, gridH: 8, gridW: 8 }];
    const p = buildPrompt({
      template: shipped, tokenizer, messages: [userTurn(2, 'What differs between these images?')],
      imageGrids: grids, mergeSize: 2, imageTokenId: 151655,
    });
    assert.equal(p.text, TWO_IMAGES);
    const unexpanded = tokenizer.encode(TWO_IMAGES);
    assert.equal(p.tokenIds.length, unexpanded.length - 2 + 6 + 16);
    assert.equal(p.imageSpans.length, 2);
    const [a, b] = p.imageSpans;
    assert.equal(a.end - a.start, 6);
    assert.equal(b.end - b.start, 16);
    // Each span is exactly a run of pads between <|vision_start|> and <|vision_end|>.
    for (const s of p.imageSpans) {
      assert.ok(p.tokenIds.slice(s.start, s.end).every((id) => id === 151655));
      assert.equal(p.tokenIds[s.start - 1], 151652);
      assert.equal(p.tokenIds[s.end], 151653);
    }
    assert.equal(b.start, a.end + 2); // <|vision_end|><|vision_start|> separate the two images.
    assert.equal(p.tokenIds.filter((id) => id === 151655).length, 22);
  });

  it('gives the same ids as tokenizing the text with the pads already expanded', () => {
    const grids = [{ gridT: 1, gridH: 2, gridW: 4 }];
    const p = buildPrompt({ template: shipped, tokenizer, messages: [userTurn(1, 'Hi')], imageGrids: grids, mergeSize: 2, imageTokenId: 151655 });
    assert.deepEqual(p.tokenIds, tokenizer.encode(p.text.replace('<|image_pad|>', '<|image_pad|>'.repeat(2))));
  });

  it('refuses a prompt whose image placeholders do not match the images given', () => {
    assert.throws(() => buildPrompt({
      template: shipped, tokenizer, messages: [userTurn(1, 'Is <|image_pad|> here?')],
      imageGrids: [{ gridT: 1, gridH: 2, gridW: 2 }], mergeSize: 2, imageTokenId: 151655,
    }), (e: unknown) => e instanceof CheckpointError && e.code === 'ChatTemplate' && e.message.includes('2 image placeholders but 1 images'));
  });

  it('counts image tokens and rejects grids that are not whole merge blocks', () => {
    assert.equal(imageTokenCount({ gridT: 1, gridH: 82, gridW: 60 }, 2), 1230);
    assert.throws(() => imageTokenCount({ gridT: 1, gridH: 3, gridW: 3 }, 2), /not a whole number/);
  });
});
