/**
 * What the cache did for each image, end to end on the built-in model: the per-image outcome in the ask
 * result, the request outcome and image counts in the statistics, and the badge the editor draws from
 * them (extension/src/badge.ts), for each case: cold, a reused system prompt only, an image in an exact
 * prefix, image KV from RAM and from disk, encoder output only.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VlcacheServer } from '../../../server/src/server';
import { imageReuseRate } from '../../../server/src/protocol/reuse';
import { cacheBadge } from '../../../extension/src/badge';
import { FakeClientSink, initializeParams, makeWorkspace, type Workspace } from '../../support/server-fixture';

let ws: Workspace;
before(() => {
  ws = makeWorkspace();
  process.env.VLCACHE_HOME = ws.home;
});

describe('per-image cache outcome', () => {
  it('says exactly what was reused, and the statistics and the badge agree', async () => {
    const server = new VlcacheServer(new FakeClientSink());
    await server.initialize(initializeParams(ws));
    const ask = (images: string[], question: string, extra: object = {}) => server.ask({ images, question, maxTokens: 2, ...extra });

    const cold = await ask(['a.png'], 'What is it?');
    assert.deepEqual(cold.images[0].reuse, { kind: 'cold' });
    assert.equal(cacheBadge(cold).outcome, 'cold');
    assert.match(cacheBadge(cold).text, /^cold · TTFT \d+ ms$/);

    // A new image after the same system prompt: the prefix cache serves the system prompt, not the image.
    const prefixOnly = await ask(['b.png'], 'What is it?');
    assert.ok(prefixOnly.cache.prefixTokensReused > 0, 'the system prompt came from the prefix cache');
    assert.deepEqual(prefixOnly.images[0].reuse, { kind: 'cold' });
    const pb = cacheBadge(prefixOnly);
    assert.deepEqual([pb.outcome, pb.tone], ['prefix', 'miss']);
    assert.match(pb.text, /^cold · text prefix reused \(\d+% of the prompt\) · TTFT/);
    assert.doesNotMatch(pb.text, /⚡|hit/);

    // The same image first, another question: its rows are inside the exact prefix.
    const inPrefix = await ask(['a.png'], 'Which colours?');
    assert.deepEqual(inPrefix.images[0].reuse, { kind: 'prefix', tier: 'ram' });
    const ib = cacheBadge(inPrefix);
    assert.deepEqual([ib.outcome, ib.tone], ['image', 'hit']);
    assert.match(ib.text, /^⚡ image reused \(prefix, RAM\) · \d+% of the prompt reused · TTFT/);

    // A follow-up: the image comes after the history, so its K/V comes from the image cache.
    const followUp = await ask(['a.png'], 'And the shapes?', { history: [{ role: 'user', content: 'What is it?' }, { role: 'assistant', content: cold.text }] });
    assert.deepEqual(followUp.images[0].reuse, { kind: 'kv', tier: 'ram' });
    assert.match(cacheBadge(followUp).text, /^⚡ image reused \(KV, RAM\) · /);

    // mode full reuses no K/V: only the encoder output.
    const encoderOnly = await ask(['b.png'], 'Describe it.', { mode: 'full' });
    assert.deepEqual(encoderOnly.images[0].reuse, { kind: 'encoder', tier: 'ram' });
    const eb = cacheBadge(encoderOnly);
    assert.deepEqual([eb.outcome, eb.tone], ['partial', 'partial']);
    assert.match(eb.text, /^encoder reused \(RAM\) · TTFT/);

    const s = server.stats().requests;
    assert.deepEqual(s.recent.map((r) => r.outcome), ['cold', 'prefix', 'image', 'image', 'partial']);
    assert.deepEqual(s.images, { kv: 1, prefix: 1, encoder: 1, cold: 2 });
    assert.equal(imageReuseRate(s.images!), 2 / 5);
    await server.shutdown();

    // A new daemon on the same cache directory: the image's K/V comes from disk.
    const again = new VlcacheServer(new FakeClientSink());
    await again.initialize(initializeParams(ws));
    const fromDisk = await again.ask({ images: ['a.png'], question: 'Once more?', maxTokens: 2,
      history: [{ role: 'user', content: 'Hello' }, { role: 'assistant', content: 'Hi.' }] });
    assert.deepEqual(fromDisk.images[0].reuse, { kind: 'kv', tier: 'disk' });
    assert.match(cacheBadge(fromDisk).text, /^⚡ image reused \(KV, disk\) · /);
    await again.shutdown();
  });
});
