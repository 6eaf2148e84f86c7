/** The chat participant's plain logic: which images and conversation a turn is about, its question, its follow-ups. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  attachmentFileName, conversationFor, earlierImages, followupsFor, hasImageExtension, isBinaryImageLike, isChatTurnMetadata,
  isImageMimeType, MAX_CODE_CONTEXT_CHARS, questionWithCode, withoutReferences, type ChatTurnMetadata,
} from '../../../extension/src/chat-images';
import { estimateTokens, toAsk } from '../../../extension/src/lm-messages';

const turn = (images: string[], question: string, answer: string, command?: string): ChatTurnMetadata =>
  ({ vlcache: 1, images, question, answer, command });
const A = 'file:///ws/a.png';
const B = 'file:///ws/b.png';

describe('chat images', () => {
  it('recognises image files, image MIME types and pasted image data by shape', () => {
    assert.ok(hasImageExtension('/ws/Shot.PNG') && hasImageExtension('x.jpeg') && hasImageExtension('y.webp'));
    assert.ok(!hasImageExtension('/ws/app.tsx') && !hasImageExtension('png'));
    assert.ok(isImageMimeType('image/png') && isImageMimeType('IMAGE/JPEG') && !isImageMimeType('image/svg+xml') && !isImageMimeType('text/plain'));
    assert.ok(isBinaryImageLike({ mimeType: 'image/png', data: () => Promise.resolve(new Uint8Array()) }));
    assert.ok(!isBinaryImageLike({ mimeType: 'image/png' }) && !isBinaryImageLike('file:///a.png') && !isBinaryImageLike(null));
  });

  it('names pasted bytes by their SHA-256, with the extension of their type', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const hex = createHash('sha256').update(bytes).digest('hex');
    assert.equal(attachmentFileName(bytes, 'image/png'), `${hex}.png`);
    assert.equal(attachmentFileName(bytes, 'image/jpeg'), `${hex}.jpg`);
    assert.notEqual(attachmentFileName(new Uint8Array([1, 2, 4]), 'image/png'), `${hex}.png`);
  });

  it('a follow-up without images is about the images of the latest turn that had some', () => {
    assert.deepEqual(earlierImages([]), []);
    assert.deepEqual(earlierImages([turn([A], 'q1', 'a1'), turn([B], 'q2', 'a2')]), [B]);
    assert.deepEqual(earlierImages([turn([A], 'q1', 'a1'), turn([], 'hello', 'no image')]), [A]);
  });

  it('the conversation sent with a question is the trailing run of answered turns about the same images', () => {
    const history = [turn([A], 'q1', 'a1'), turn([B], 'q2', 'a2'), turn([B], 'q3', ''), turn([B], 'q4', 'a4')];
    assert.deepEqual(conversationFor([B], history), [
      { role: 'user', content: 'q2' }, { role: 'assistant', content: 'a2' },
      { role: 'user', content: 'q4' }, { role: 'assistant', content: 'a4' },
    ]);
    assert.deepEqual(conversationFor([A], history), []);
    assert.deepEqual(conversationFor([A, B], [turn([A, B], 'q', 'a')]), [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }]);
  });

  it('reads back only metadata it wrote', () => {
    assert.ok(isChatTurnMetadata(turn([A], 'q', 'a')));
    assert.ok(!isChatTurnMetadata({ images: [A], question: 'q', answer: 'a' }));
    assert.ok(!isChatTurnMetadata(undefined));
  });

  it('drops the #file references from the prompt, from any order of ranges', () => {
    const prompt = '#file:a.png what is in #file:b.png ?';
    assert.equal(withoutReferences(prompt, [[23, 34], [0, 11]]), 'what is in ?');
    assert.equal(withoutReferences('What is this?', []), 'What is this?');
  });

  it('puts attached code after the question, named and fenced, within the budget', () => {
    assert.equal(questionWithCode('Q?', []), 'Q?');
    const q = questionWithCode('Which component?', [{ name: 'src/app.tsx:3-4', text: 'const a = 1;\n' }]);
    assert.equal(q, 'Which component?\n\nCode for context:\n\nsrc/app.tsx:3-4:\n```\nconst a = 1;\n```');
    const long = questionWithCode('Q?', [{ name: 'big.ts', text: 'x'.repeat(MAX_CODE_CONTEXT_CHARS * 2) }, { name: 'more.ts', text: 'y' }]);
    assert.ok(long.length < MAX_CODE_CONTEXT_CHARS + 200 && !long.includes('more.ts'));
  });

  it('offers follow-ups only after an answer about images; a mockup answer is not offered code again', () => {
    assert.deepEqual(followupsFor(turn([A], 'q', '')), []);
    assert.deepEqual(followupsFor(turn([], 'q', 'a')), []);
    assert.deepEqual(followupsFor(turn([A], 'q', 'a')).map((f) => f.command), [undefined, 'mockup']);
    assert.ok(followupsFor(turn([A], 'q', 'a', 'mockup')).every((f) => f.command === undefined));
  });
});

describe('language model messages', () => {
  const text = (value: string) => ({ value });
  it('the last user message is the question, earlier text the history, image parts the images', async () => {
    const png = new Uint8Array([0x89, 0x50]);
    const ask = toAsk([
      { role: 1, content: [text('What is this?'), { mimeType: 'image/png', data: png }] },
      { role: 2, content: [text('A diagram.')] },
      { role: 1, content: [text('How many '), text('boxes?'), { mimeType: 'text/plain', data: new Uint8Array([1]) }, { callId: 'tool' }] },
    ]);
    assert.equal(ask.question, 'How many boxes?');
    assert.deepEqual(ask.history, [{ role: 'user', content: 'What is this?' }, { role: 'assistant', content: 'A diagram.' }]);
    assert.equal(ask.images.length, 1);
    assert.equal(ask.images[0].mimeType, 'image/png');
    assert.deepEqual(await ask.images[0].data(), png);
  });
  it('no user message: an empty question', () => {
    assert.deepEqual(toAsk([]), { question: '', history: [], images: [] });
  });
  it('estimates tokens at about four characters each', () => {
    assert.equal(estimateTokens(''), 0);
    assert.equal(estimateTokens('abcde'), 2);
  });
});
