/** Idle release and reload, and the statistics the status bar reads (recent asks, hit rate). */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VlcacheServer } from '../../../server/src/server';
import type { StatusParams } from '../../../server/src/protocol/status';
import { FakeClientSink, initializeParams, makeWorkspace, type Workspace } from '../../support/server-fixture';

let ws: Workspace;
before(() => {
  ws = makeWorkspace();
  process.env.VLCACHE_HOME = ws.home;
});

/**
 * Resolves on the next status of `kind`. Holds the event loop open meanwhile: the idle
 * clock does not (in the daemon the connection does).
 */
function next(sink: FakeClientSink, kind: StatusParams['kind']): Promise<StatusParams> {
  const alive = setInterval(() => {}, 1000);
  return new Promise<StatusParams>((resolve) => {
    const prev = sink.onStatus;
    sink.onStatus = (s) => {
      prev?.(s);
      if (s.kind === kind) {
        sink.onStatus = prev;
        resolve(s);
      }
    };
  }).finally(() => clearInterval(alive));
}

describe('idle release', () => {
  it('unloads the model after idleTimeoutS without requests and reloads it for the next one', async () => {
    const sink = new FakeClientSink();
    const server = new VlcacheServer(sink);
    await server.initialize(initializeParams(ws, { idleTimeoutS: 0.05 }));
    const released = next(sink, 'released');
    await server.ask({ images: ['a.png'], question: 'What is it?', maxTokens: 2 });
    const s = await released;
    assert.match((s as { reason: string }).reason, /no requests for 0.05 s/);
    const stats = server.stats();
    assert.equal(stats.model.state, 'released');
    assert.equal(stats.cache, undefined);
    assert.equal(stats.model.device, undefined);

    const nLoading = sink.statuses.filter((x) => x.kind === 'loading').length;
    const again = next(sink, 'released');
    const r = await server.ask({ images: ['a.png'], question: 'And now?', maxTokens: 2 });
    assert.equal(r.cache.encoderHits, 1); // From disk: the store was flushed before it closed.
    assert.ok(sink.statuses.filter((x) => x.kind === 'loading').length > nLoading);
    assert.equal(server.stats().model.state, 'ready');
    await again; // And released again after this one.
    await server.shutdown();
  });

  it('never releases with idleTimeoutS 0, and not while requests keep coming', async (t) => {
    // The idle clock is a setTimeout: with mocked timers, time passes when the test says, and a
    // release that fires queues its job at once (synchronously), so the queue shows it.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const releaseQueued = (s: VlcacheServer) => s.stats().queue.nInteractive > 0;
    const server = new VlcacheServer(new FakeClientSink());
    await server.initialize(initializeParams(ws, { idleTimeoutS: 0, cacheDir: undefined }));
    await server.ask({ images: ['a.png'], question: 'Hi?', maxTokens: 1 });
    t.mock.timers.tick(24 * 3600_000);
    assert.equal(releaseQueued(server), false, 'idleTimeoutS 0: no release after a day');
    assert.equal(server.stats().model.state, 'ready');
    await server.shutdown();

    const sink = new FakeClientSink();
    const busy = new VlcacheServer(sink);
    await busy.initialize(initializeParams(ws, { idleTimeoutS: 0.2, cacheDir: undefined }));
    for (let i = 0; i < 4; i++) {
      await busy.ask({ images: ['b.png'], question: `Question ${i}?`, maxTokens: 1 });
      t.mock.timers.tick(150); // 600 ms in all, but never 200 ms without a request
      assert.equal(releaseQueued(busy), false, `released before question ${i + 1}`);
    }
    // The clock runs: 200 ms after the last request the release is queued, and it happens.
    const released = next(sink, 'released');
    t.mock.timers.tick(50);
    assert.equal(releaseQueued(busy), true, 'no release 200 ms after the last request');
    await released;
    assert.equal(busy.stats().model.state, 'released');
    await busy.shutdown();
  });
});

describe('stats', () => {
  it('records the last 50 asks, oldest first, with TTFT and cache hits, and the hit rate of lookups', async () => {
    const server = new VlcacheServer(new FakeClientSink());
    await server.initialize(initializeParams(ws, { cacheDir: undefined }));
    assert.equal(server.stats().requests.hitRate, undefined);
    assert.deepEqual(server.stats().requests.recent, []);
    const t0 = Date.now();
    await server.ask({ images: ['docs/diagram.png'], question: 'Q?', maxTokens: 1 });
    await server.ask({ images: ['docs/diagram.png'], question: 'Q again?', maxTokens: 1 });
    const s = server.stats();
    assert.deepEqual(s.requests.recent.map((r) => [r.cacheHit, r.nImages]), [[false, 1], [true, 1]]);
    assert.ok(s.requests.recent.every((r) => r.atMs >= t0 && r.ttftMs > 0 && r.recomputeFraction > 0 && r.recomputeFraction <= 1));
    assert.ok(s.requests.recent[1].recomputeFraction < s.requests.recent[0].recomputeFraction);
    const c = s.cache!;
    assert.equal(s.requests.hitRate, (c.hits.encoder + c.hits.kv) / (c.hits.encoder + c.hits.kv + c.misses.encoder + c.misses.kv));
    assert.ok(s.requests.hitRate! > 0 && s.requests.hitRate! < 1);
    for (let i = 0; i < 49; i++) await server.ask({ images: [], question: `Text ${i}?`, maxTokens: 1 });
    const recent = server.stats().requests.recent;
    assert.equal(recent.length, 50);
    assert.equal(recent[0].nImages, 1); // 51 asks: the first is dropped, the second image ask is the oldest kept
    assert.ok(recent.every((r, i) => i === 0 || r.atMs >= recent[i - 1].atMs));
    await server.shutdown();
  });
});
