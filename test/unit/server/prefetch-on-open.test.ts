/**
 * Opening a Markdown document prefetches the workspace images it shows, once the model
 * is loaded (never loading it for that), so a first question about them is a cache hit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { VlcacheServer } from '../../../server/src/server';
import { TextDoc } from '../../../server/src/hover/text-document';
import type { InitializationOptions } from '../../../server/src/protocol/initialize';
import { FakeClientSink, initializeParams, makeWorkspace, type Workspace } from '../../support/server-fixture';

let ws: Workspace;
before(() => {
  ws = makeWorkspace();
  process.env.VLCACHE_HOME = ws.home;
});

async function serverWith(options: InitializationOptions) {
  const sink = new FakeClientSink();
  const docs = new Map<string, TextDoc>();
  const server = new VlcacheServer(sink, { get: (uri) => docs.get(uri) });
  await server.initialize(initializeParams(ws, { cacheDir: join(ws.home, `cache-${Math.random()}`), ...options }));
  const open = (name: string, text: string, languageId = 'markdown') => {
    const uri = pathToFileURL(join(ws.dir, name)).href;
    docs.set(uri, new TextDoc(uri, languageId, 1, text));
    server.documentOpened(uri);
  };
  return { server, open };
}

const MARKDOWN = '# Notes\n\n![a](a.png) and <img src="b.png">, twice: ![a again](a.png), and a missing ![x](x.png)\n';

/**
 * What the daemon has queued or is running. A prefetch queues its jobs synchronously inside
 * documentOpened (the scheduler dispatches on a later microtask), so reading this right after
 * an open sees every job the open started: no sleep can miss one.
 */
const queued = (server: VlcacheServer) => server.stats().queue;
const IDLE = { nInteractive: 0, nBackground: 0, running: false };

async function untilPrefetched(server: VlcacheServer, n: number): Promise<void> {
  const end = Date.now() + 20_000;
  while (server.stats().requests.nPrefetches < n) {
    if (Date.now() > end) throw new Error('no prefetch');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('prefetch when a Markdown document opens', () => {
  it('encodes and prefills its images once the model is loaded; the first question is then a hit', async () => {
    const { server, open } = await serverWith({});
    try {
      open('before.md', MARKDOWN);
      assert.deepEqual(queued(server), IDLE, 'opening a document before the model is loaded queues nothing');
      assert.equal(server.stats().model.state, 'unloaded', 'opening a document must not load the model');
      await server.ask({ images: ['docs/diagram.png'], question: 'How many boxes are there?', maxTokens: 1 });
      open('notes.md', MARKDOWN);
      assert.deepEqual(queued(server), { ...IDLE, nBackground: 2 }, 'one background job per distinct existing image (a.png, b.png)');
      await untilPrefetched(server, 1);
      for (const image of ['a.png', 'b.png']) {
        const r = await server.ask({ images: [image], question: 'What colour is it?', maxTokens: 1 });
        assert.equal(r.cache.encoderHits, 1, `${image}: ${JSON.stringify(r.cache)}`);
        assert.equal(r.cache.kvHits + (r.cache.prefixTokensReused > 0 ? 1 : 0) > 0, true, `${image}: ${JSON.stringify(r.cache)}`);
      }
    } finally {
      await server.shutdown();
    }
  });

  it('does nothing for other languages or with prefetchOnOpen: false', async () => {
    for (const [options, language] of [[{ prefetchOnOpen: false }, 'markdown'], [{}, 'typescript']] as const) {
      const { server, open } = await serverWith(options);
      try {
        await server.ask({ images: ['docs/diagram.png'], question: 'How many boxes are there?', maxTokens: 1 });
        assert.equal(server.stats().model.state, 'ready');
        open('notes.md', language === 'markdown' ? MARKDOWN : 'const a = "a.png";\n', language);
        assert.deepEqual(queued(server), IDLE, `${language}, ${JSON.stringify(options)}: nothing is queued`);
      } finally {
        await server.shutdown();
      }
    }
  });
});
