/**
 * The answer view's messages as the extension host checks them (answer-messages.ts): what the page may send is
 * accepted field by field, anything else is dropped; a code fence's word maps to a VS Code language id.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { languageIdOf, MAX_CODE_CHARS, MAX_QUESTION_CHARS, parseAnswerViewMessage } from '../../../extension/src/answer-messages';

describe('parseAnswerViewMessage', () => {
  it('accepts the three code actions with the block text and fence word', () => {
    for (const action of ['copy', 'insert', 'newFile'] as const) {
      assert.deepEqual(parseAnswerViewMessage({ type: 'code', action, code: 'let x = 1;\n', language: 'ts' }),
        { type: 'code', action, code: 'let x = 1;\n', language: 'ts' });
    }
    assert.deepEqual(parseAnswerViewMessage({ type: 'code', action: 'copy', code: 'x' }), { type: 'code', action: 'copy', code: 'x', language: '' });
  });

  it('drops unknown actions, non-string code, oversized code and odd language words', () => {
    for (const m of [
      { type: 'code', action: 'delete', code: 'x', language: '' },
      { type: 'code', action: 'toString', code: 'x', language: '' },
      { type: 'code', action: 'copy', code: 42, language: '' },
      { type: 'code', action: 'copy', code: 'x'.repeat(MAX_CODE_CHARS + 1), language: '' },
      { type: 'code', action: 'copy', code: 'x', language: 'ts"><script>' },
      { type: 'code', action: 'copy', code: 'x', language: 7 },
    ]) assert.equal(parseAnswerViewMessage(m), undefined, JSON.stringify(m).slice(0, 80));
  });

  it('accepts a trimmed question, Stop and Ready; drops empty or oversized questions and anything that is not a message', () => {
    assert.deepEqual(parseAnswerViewMessage({ type: 'ask', question: '  How many boxes?\n' }), { type: 'ask', question: 'How many boxes?' });
    assert.deepEqual(parseAnswerViewMessage({ type: 'stop', extra: 1 }), { type: 'stop' });
    assert.deepEqual(parseAnswerViewMessage({ type: 'ready', turns: 99 }), { type: 'ready' });
    for (const m of [{ type: 'ask', question: '   ' }, { type: 'ask', question: 'x'.repeat(MAX_QUESTION_CHARS + 1) }, { type: 'ask' },
      { type: 'run', command: 'rm' }, null, undefined, 'stop', 3, []]) {
      assert.equal(parseAnswerViewMessage(m), undefined, String(JSON.stringify(m)).slice(0, 80));
    }
  });
});

describe('languageIdOf', () => {
  const known = ['plaintext', 'html', 'typescript', 'typescriptreact', 'javascript', 'python', 'shellscript', 'css', 'vue'];
  it('maps fence words and their usual aliases to known language ids', () => {
    assert.equal(languageIdOf('html', known), 'html');
    assert.equal(languageIdOf('ts', known), 'typescript');
    assert.equal(languageIdOf('TSX', known), 'typescriptreact');
    assert.equal(languageIdOf('js', known), 'javascript');
    assert.equal(languageIdOf('py', known), 'python');
    assert.equal(languageIdOf('bash', known), 'shellscript');
    assert.equal(languageIdOf('vue', known), 'vue');
  });
  it('falls back to plaintext for no word, unknown words and aliases of languages the editor lacks', () => {
    assert.equal(languageIdOf('', known), 'plaintext');
    assert.equal(languageIdOf('brainfuck', known), 'plaintext');
    assert.equal(languageIdOf('rs', known), 'plaintext');
  });
});
