/**
 * Every initializationOptions setting and every vlcache/ask field is checked with a clear
 * InvalidParams before anything runs: each value below used to pass and then fail every ask
 * with an internal error, or (idleTimeoutS 3e6) overflow Node's timer and release the model
 * right after each answer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseError } from 'vscode-languageserver-protocol';
import { checkAskParams, MAX_QUESTION_CHARS, parseConfig } from '../../../server/src/config';
import { arenaFor } from '../../../server/src/engine/model';
import { ErrorCodes } from '../../../server/src/protocol/errors';
import { VlcacheServer } from '../../../server/src/server';
import { FakeClientSink, initializeParams, makeWorkspace } from '../../support/server-fixture';

const invalid = (re: RegExp) => (e: unknown) => e instanceof ResponseError && e.code === ErrorCodes.InvalidParams && re.test(e.message);

describe('initializationOptions', () => {
  const refused: [string, unknown, RegExp][] = [
    ['idleTimeoutS', 3e6, /idleTimeoutS takes a number from 0 to 2147483/],
    ['idleTimeoutS', -1, /idleTimeoutS/],
    ['ramBudgetMb', 1.5, /ramBudgetMb takes a whole number/],
    ['diskBudgetMb', 1e300, /diskBudgetMb takes a whole number from 0 to/],
    ['maxPixels', 0.5, /maxPixels takes a whole number/],
    ['ratio', 2, /ratio takes a number from 0 to 1/],
    ['mode', 'bogus', /mode takes one of full, prefix/],
    ['kvArena', true, /kvArena takes one of auto, on, off/],
    ['kvArenaRows', 8, /kvArenaRows takes a whole number from 16/],
    ['hoverWaitMs', Number.NaN, /hoverWaitMs/],
    ['loadModelAtStartup', 'yes', /loadModelAtStartup takes true or false/],
    ['modelPath', 'relative/dir', /modelPath takes an absolute path/],
  ];
  for (const [name, value, re] of refused) {
    it(`refuses ${name} ${JSON.stringify(value) ?? String(value)}`, () => {
      assert.throws(() => parseConfig({ [name]: value }), invalid(re));
    });
  }

  it('keeps the largest idle timeout a Node timer can hold, in whole milliseconds', () => {
    assert.equal(parseConfig({ idleTimeoutS: 2147483 }).idleTimeoutMs, 2147483000);
    assert.equal(parseConfig({ idleTimeoutS: 0.0505 }).idleTimeoutMs, 51);
    assert.equal(parseConfig({ ramBudgetMb: 0, diskBudgetMb: 1 }).diskBytes, 1 << 20);
  });

  it('decodes through the KV arena on CUDA only, unless told otherwise', () => {
    assert.equal(parseConfig({}).kvArena, 'auto');
    assert.deepEqual(arenaFor(parseConfig({}).kvArena, 'cuda'), {});
    for (const device of ['cpu', 'webgpu'] as const) assert.equal(arenaFor('auto', device), undefined);
    assert.deepEqual(arenaFor(parseConfig({ kvArena: 'on' }).kvArena, 'cpu'), {});
    assert.equal(arenaFor(parseConfig({ kvArena: 'off' }).kvArena, 'cuda'), undefined);
    assert.deepEqual(arenaFor({ capacity: 64 }, 'webgpu'), { capacity: 64 });
    assert.deepEqual(arenaFor('auto', 'cuda', parseConfig({ kvArenaRows: 4096 }).kvArenaRows), { capacity: 4096 });
    assert.equal(arenaFor('off', 'cuda', 4096), undefined);
    // float32 on CUDA: GroupQueryAttention would run on the CPU (no float32 CUDA kernel), so auto is off; on is on.
    assert.equal(arenaFor('auto', 'cuda', undefined, 'float32'), undefined);
    assert.deepEqual(arenaFor('on', 'cuda', undefined, 'float32'), {});
  });
});

describe('vlcache/ask fields', () => {
  const ok = { images: ['a.png'], question: 'What is it?' };
  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['topP 0', { topP: 0 }, /topP takes a number above 0 and at most 1/],
    ['mode "bogus"', { mode: 'bogus' }, /mode takes one of/],
    ['images "x.png"', { images: 'x.png' }, /images takes a list of image paths/],
    ['images [3]', { images: [3] }, /images takes a list/],
    ['history [null]', { history: [null] }, /history\[0\] takes a \{role/],
    ['history [{role: "system"}]', { history: [{ role: 'system', content: 'x' }] }, /history\[0\]/],
    ['history "x"', { history: 'x' }, /history takes a list/],
    ['maxTokens 2.5', { maxTokens: 2.5 }, /maxTokens takes a whole number from 1/],
    ['maxTokens 0', { maxTokens: 0 }, /maxTokens/],
    ['temperature -1', { temperature: -1 }, /temperature/],
    ['seed 0.5', { seed: 0.5 }, /seed takes a whole number/],
    ['ratio NaN', { ratio: Number.NaN }, /ratio/],
    ['question 42', { question: 42 }, /question takes a non-empty string/],
    ['question "  "', { question: '  ' }, /question takes a non-empty string/],
  ];
  for (const [what, change, re] of refused) {
    it(`refuses ${what}`, () => assert.throws(() => checkAskParams({ ...ok, ...change }), invalid(re)));
  }

  it('refuses a question over the size limit with what to do', () => {
    assert.throws(() => checkAskParams({ ...ok, question: 'x'.repeat(MAX_QUESTION_CHARS + 1) }), invalid(/the limit is 100000\. Shorten it/));
    checkAskParams({ ...ok, question: 'x'.repeat(MAX_QUESTION_CHARS), history: [{ role: 'user', content: 'hi' }], topP: 1, mode: 'full' });
  });

  it('answers a bad field from the server with InvalidParams before queueing, and refuses a second initialize', async () => {
    const ws = makeWorkspace();
    process.env.VLCACHE_HOME = ws.home;
    const server = new VlcacheServer(new FakeClientSink());
    await server.initialize(initializeParams(ws, { cacheDir: undefined }));
    await assert.rejects(server.ask({ images: 'a.png', question: 'x' } as never), invalid(/images takes a list/));
    await assert.rejects(server.prefetch({ images: 'a.png' } as never), invalid(/prefetch: images takes a list/));
    await assert.rejects(server.initialize(initializeParams({ ...ws, dir: '/' }, {})),
      (e: unknown) => e instanceof ResponseError && e.code === -32600 && /already received/.test(e.message));
    // The first initialize's workspace still bounds reads: / was not added.
    await assert.rejects(server.ask({ images: ['/etc/hostname.png'], question: 'x' }),
      (e: unknown) => e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace);
    await server.shutdown();
  });
});
