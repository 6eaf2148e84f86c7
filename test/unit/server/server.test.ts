/**
 * VlcacheServer driven directly (no transport), with a FakeClientSink and the real
 * engine on the built-in model on the CPU.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ResponseError, LSPErrorCodes } from 'vscode-languageserver-protocol';
import { VlcacheServer } from '../../../server/src/server';
import { ErrorCodes } from '../../../server/src/protocol/errors';
import { PROTOCOL_VERSION } from '../../../server/src/protocol/initialize';
import type { AskPartialResult } from '../../../server/src/protocol/ask';
import { FakeClientSink, initializeParams, makeWorkspace, type Workspace } from '../../support/server-fixture';

let ws: Workspace;
before(() => {
  ws = makeWorkspace();
  process.env.VLCACHE_HOME = ws.home;
});

const deltas = (sink: FakeClientSink, token: string) =>
  sink.partials.filter((p) => p.token === token).map((p) => (p.value as AskPartialResult).delta).join('');

describe('VlcacheServer', () => {
  let sink: FakeClientSink;
  let server: VlcacheServer;
  before(async () => {
    sink = new FakeClientSink();
    server = new VlcacheServer(sink);
    const init = await server.initialize(initializeParams(ws));
    assert.equal(init.protocolVersion, PROTOCOL_VERSION);
  });
  after(() => server.shutdown());

  it('loads the model on the first ask, streams partial text and returns the stats', async () => {
    assert.equal(server.stats().model.state, 'unloaded');
    const r = await server.ask({ images: ['docs/diagram.png'], question: 'What does this show?', maxTokens: 12,
      partialResultToken: 'p1', workDoneToken: 'w1' });
    assert.ok(r.nGeneratedTokens > 0);
    assert.equal(deltas(sink, 'p1'), r.text);
    assert.equal(r.device, 'cpu');
    assert.equal(r.cache.encoderMisses, 1);
    assert.equal(r.images[0].image, 'docs/diagram.png');
    assert.ok(r.timings.ttftMs > 0);
    const kinds = sink.statuses.map((s) => s.kind);
    assert.ok(kinds.indexOf('loading') < kinds.indexOf('ready') && kinds.indexOf('ready') < kinds.lastIndexOf('stats'), kinds.join());
    assert.deepEqual(sink.statuses.find((s) => s.kind === 'ready') && (sink.statuses.find((s) => s.kind === 'ready') as { device: string }).device, 'cpu');
    const w = sink.workDone.filter((x) => x.token === 'w1').map((x) => x.kind);
    assert.equal(w[0], 'begin');
    assert.equal(w.at(-1), 'end');
    const stats = server.stats();
    assert.equal(stats.model.state, 'ready');
    assert.equal(stats.requests.nAsks, 1);
    assert.ok(stats.cache!.ram.nEntries > 0);
  });

  it('reports cache hits on a second ask about the same image', async () => {
    const r = await server.ask({ images: [`${ws.dir}/docs/diagram.png`], question: 'Which boxes are there?', maxTokens: 4 });
    assert.equal(r.cache.encoderHits, 1);
    // The image comes right after the system prompt again: its KV is reused as part of the exact prefix.
    assert.ok(r.cache.prefixTokensReused > 0);
    assert.ok(r.cache.tokensComputed < r.cache.tokensTotal);
    // After other text the same image is an image-KV hit at a new position.
    const moved = await server.ask({ images: ['docs/diagram.png'], question: 'Again?', history: [{ role: 'user', content: 'Hello.' },
      { role: 'assistant', content: 'Hi.' }], maxTokens: 2 });
    assert.equal(moved.cache.kvHits, 1);
  });

  it('refuses an image outside the workspace folders', async () => {
    for (const ref of [ws.outside, '../outside.png']) {
      await assert.rejects(server.ask({ images: [ref], question: 'What is it?' }), (e: unknown) =>
        e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace && /outside the workspace/.test(e.message));
    }
    await assert.rejects(server.prefetch({ images: [ws.outside] }), (e: unknown) =>
      e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace);
  });

  it('follows workspace folders added and removed after initialize', async () => {
    const parent = { uri: pathToFileURL(dirname(ws.outside)).href };
    const folder = { uri: pathToFileURL(ws.dir).href };
    server.workspaceFoldersChanged({ added: [parent], removed: [] });
    const r = await server.ask({ images: [ws.outside], question: 'What is it?', maxTokens: 1 });
    assert.equal(r.images.length, 1);
    server.workspaceFoldersChanged({ added: [], removed: [parent] });
    await assert.rejects(server.ask({ images: [ws.outside], question: 'What is it?' }), (e: unknown) =>
      e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace);
    server.workspaceFoldersChanged({ added: [], removed: [folder] });
    await assert.rejects(server.ask({ images: ['docs/diagram.png'], question: 'What is it?' }), (e: unknown) =>
      e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace && /no workspace folder is open/.test(e.message));
    server.workspaceFoldersChanged({ added: [folder], removed: [] });
    assert.equal((await server.ask({ images: ['docs/diagram.png'], question: 'What is it?', maxTokens: 1 })).images.length, 1);
  });

  it('answers a missing image with InvalidImage', async () => {
    await assert.rejects(server.ask({ images: ['nope.png'], question: 'What is it?' }), (e: unknown) =>
      e instanceof ResponseError && e.code === ErrorCodes.InvalidImage);
  });

  it('stops a running ask between steps when cancelled and stays usable', async () => {
    const controller = new AbortController();
    sink.onPartial = () => controller.abort();
    const r = await server.ask({ images: ['a.png'], question: 'Describe every detail of this image at length.', maxTokens: 200,
      partialResultToken: 'p-cancel' }, controller.signal);
    sink.onPartial = undefined;
    assert.equal(r.stopReason, 'cancelled');
    assert.ok(r.nGeneratedTokens < 200);
    const again = await server.ask({ images: ['a.png'], question: 'And now?', maxTokens: 3 });
    assert.notEqual(again.stopReason, 'cancelled');
  });

  it('drops an ask cancelled before it starts with RequestCancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(server.ask({ images: ['a.png'], question: 'Hi?' }, controller.signal), (e: unknown) =>
      e instanceof ResponseError && e.code === LSPErrorCodes.RequestCancelled);
    assert.ok(server.stats().requests.nCancelled >= 1);
  });

  it('clears the cache', async () => {
    const r = await server.clearCache();
    assert.ok(r.nEntriesRemoved > 0);
    assert.equal(server.stats().cache!.ram.nEntries, 0);
    const again = await server.ask({ images: ['docs/diagram.png'], question: 'What does this show?', maxTokens: 2 });
    assert.equal(again.cache.encoderHits, 0);
  });
});

describe('VlcacheServer prefetch', () => {
  it('is overtaken by an interactive ask and then makes the images hits', async () => {
    const sink = new FakeClientSink();
    const server = new VlcacheServer(sink);
    await server.initialize(initializeParams(ws, { cacheDir: undefined }));
    // The first prefetch job loads the model; when it says 'ready' that job runs and two wait.
    const ready = new Promise<void>((r) => { sink.onStatus = (s) => { if (s.kind === 'ready') r(); }; });
    let prefetchDone = false;
    const prefetch = server.prefetch({ images: ['docs/diagram.png', 'a.png', 'b.png'] }).then((r) => { prefetchDone = true; return r; });
    await ready;
    const ask = await server.ask({ images: ['a.png'], question: 'What is it?', maxTokens: 2 });
    assert.equal(prefetchDone, false);
    assert.equal(ask.cache.encoderHits, 0); // ran before a.png's prefetch job
    const p = await prefetch;
    assert.deepEqual(p.images.map((i) => [i.image, i.state]), [['docs/diagram.png', 'computed'], ['a.png', 'cached'], ['b.png', 'computed']]);
    const b = await server.ask({ images: ['b.png'], question: 'What is it?', maxTokens: 2 });
    assert.equal(b.cache.encoderHits, 1);
    assert.ok(b.cache.prefixTokensReused + b.cache.imageTokensReused > 0);
    await server.shutdown();
  });
});
