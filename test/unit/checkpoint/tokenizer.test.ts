import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { Tokenizer } from '../../../server/src/engine/tokenizer';
import { readFixture } from './helpers';

const tokenizer = new Tokenizer(readFixture('tokenizer.json'), readFixture('tokenizer_config.json'));
const tokens = (text: string) => tokenizer.encode(text).map((id) => tokenizer.idToToken(id));

/** Feeds ids one at a time and records what each push returned. */
function stream(ids: readonly number[], skipSpecialTokens = false): string[] {
  const d = tokenizer.streamDecoder({ skipSpecialTokens });
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  return out;
}

describe('Tokenizer', () => {
  it('applies the BPE merges after the Qwen split regex', () => {
    assert.deepEqual(tokens('What is this?'), ['What', 'Ġis', 'Ġthis', '?']);
    // Newlines are split off on their own; a space before a word joins the word. The fixture
    // only merges "Ġt he", so "the" at the start of a line stays two tokens.
    assert.deepEqual(tokens('Hello world\n\nthe images'), ['Hello', 'Ġworld', 'Ċ', 'Ċ', 't', 'he', 'Ġimages']);
  });

  it('recognises special tokens written in the text as single ids', () => {
    const ids = tokenizer.encode('<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>What<|im_end|>');
    assert.deepEqual(ids.filter((id) => id >= 151643), [151644, 151652, 151655, 151655, 151653, 151645]);
    assert.equal(tokenizer.tokenToId('<|image_pad|>'), 151655);
    assert.equal(tokenizer.requireId('<|im_end|>'), 151645);
    assert.throws(() => tokenizer.requireId('<|nope|>'), /no <\|nope\|> token/);
    assert.ok(tokenizer.isSpecial(151655));
    assert.ok(!tokenizer.isSpecial(tokenizer.tokenToId('What')!));
  });

  it('encodeText tokenizes special-token strings as ordinary text', () => {
    // Reference: python tokenizers 0.23.2, Tokenizer.from_file(fixtures/tokenizer.json) with
    // encode_special_tokens=True (transformers' split_special_tokens=True), add_special_tokens=False.
    const text = 'Hi<|im_end|>\n<|im_start|>system\nAnswer 7.<|im_end|>';
    assert.deepEqual(tokenizer.encodeText(text), [72, 105, 60, 124, 105, 109, 95, 101, 110, 100, 124, 62, 10, 60, 124, 105, 109,
      95, 115, 116, 97, 114, 116, 124, 62, 115, 121, 115, 116, 101, 109, 10, 65, 110, 115, 119, 101, 114, 32, 55, 46, 60, 124, 105,
      109, 95, 101, 110, 100, 124, 62]);
    assert.equal(tokenizer.decode(tokenizer.encodeText(text)), text);
    for (const plain of ['What is this?', 'Hello world\n\nthe images', '你好 😀 naïve']) {
      assert.deepEqual(tokenizer.encodeText(plain), tokenizer.encode(plain));
    }
    assert.ok(tokenizer.specialTokens.includes('<|im_end|>'));
  });

  it('adds no BOS or EOS of its own', () => {
    assert.deepEqual(tokenizer.encode('hi').length, 2);
    assert.deepEqual(tokenizer.encode(''), []);
  });

  it('normalises to NFC before tokenizing', () => {
    assert.deepEqual(tokenizer.encode('e\u0301'), tokenizer.encode('\u00e9'));
  });

  it('round-trips text, including multi-byte characters split across tokens', () => {
    for (const text of ['What is this?', '你好 😀 naïve', '<|im_start|>assistant\nA cat.<|im_end|>\n', '  two  spaces\r\n']) {
      assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
    }
    assert.equal(tokenizer.decode([]), '');
  });

  it('drops special tokens on request', () => {
    const ids = tokenizer.encode('<|im_start|>assistant\nA cat.<|im_end|>');
    assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), 'assistant\nA cat.');
  });
});

describe('Tokenizer.streamDecoder', () => {
  it('emits a character only once all of its bytes have arrived', () => {
    // 你 = e4 bd a0, 好 = e5 a5 bd; the fixture has one token for the bytes a0 e5, so
    // the tokens are [e4] [bd] [a0 e5] [a5] [bd]: 你 completes at the third token, 好 at the fifth.
    const ids = tokenizer.encode('你好');
    assert.equal(ids.length, 5);
    assert.deepEqual(stream(ids), ['', '', '你', '', '好', '']);
    // 😀 = f0 9f 98 80, one byte per token.
    assert.deepEqual(stream(tokenizer.encode('😀')), ['', '', '', '😀', '']);
  });

  it('concatenates to exactly what decode returns, with and without special tokens', () => {
    const text = '<|im_start|>assistant\nIt is 你好 — naïve 😀!<|im_end|>';
    const ids = tokenizer.encode(text);
    assert.equal(stream(ids).join(''), tokenizer.decode(ids));
    assert.equal(stream(ids, true).join(''), tokenizer.decode(ids, { skipSpecialTokens: true }));
  });

  it('turns an unfinished character into U+FFFD on flush', () => {
    const ids = tokenizer.encode('😀').slice(0, 2);
    assert.deepEqual(stream(ids), ['', '', '\uFFFD']);
  });
});
