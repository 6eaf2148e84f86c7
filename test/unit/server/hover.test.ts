/**
 * Hovers, explanations and code lenses of VlcacheServer, driven directly (no transport)
 * with a FakeClientSink, open documents in a Map, and the built-in model on the CPU.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LSPErrorCodes, ResponseError, type Hover } from 'vscode-languageserver-protocol';
import { VlcacheServer } from '../../../server/src/server';
import { TextDoc } from '../../../server/src/hover/text-document';
import { EXPLANATIONS_FILE } from '../../../server/src/hover/explanations';
import { ErrorCodes } from '../../../server/src/protocol/errors';
import type { InitializationOptions } from '../../../server/src/protocol/initialize';
import type { ExplainedStatus } from '../../../server/src/protocol/status';
import { patternPng } from '../../support/images';
import { FakeClientSink, initializeParams, makeWorkspace, type Workspace } from '../../support/server-fixture';

let ws: Workspace;
before(() => {
  ws = makeWorkspace();
  process.env.VLCACHE_HOME = ws.home;
  writeFileSync(join(ws.dir, 'docs', 'c.png'), patternPng(40, 30, 3));
  writeFileSync(join(ws.dir, 'docs', 'd.png'), patternPng(30, 40, 4));
  writeFileSync(join(ws.dir, 'docs', 'e.png'), patternPng(36, 36, 5));
  writeFileSync(join(ws.dir, 'docs', 'fake.png'), '<html>not an image</html>');
});

/** A server over documents kept in a Map, and its sink. */
async function start(options: InitializationOptions = {}) {
  const sink = new FakeClientSink();
  const docs = new Map<string, TextDoc>();
  const server = new VlcacheServer(sink, { get: (uri) => docs.get(uri) });
  const init = await server.initialize(initializeParams(ws, options));
  const open = (rel: string, languageId: string, text: string) => {
    const uri = pathToFileURL(join(ws.dir, rel)).href;
    docs.set(uri, new TextDoc(uri, languageId, 1, text));
    return uri;
  };
  /** Hover at the first occurrence of `marker` in the document. */
  const hoverAt = (uri: string, marker: string, signal?: AbortSignal) => {
    const doc = docs.get(uri)!;
    return server.hover({ textDocument: { uri }, position: doc.positionAt(doc.getText().indexOf(marker) + 1) }, signal);
  };
  const explained = (image: string) => new Promise<ExplainedStatus>((resolve) => {
    const prev = sink.onStatus;
    sink.onStatus = (s) => {
      prev?.(s);
      if (s.kind === 'explained' && s.image === image) resolve(s);
    };
  });
  return { sink, server, init, open, hoverAt, explained };
}

const value = (h: Hover | null) => (h?.contents as { value: string } | undefined)?.value ?? '';
const fileUri = (rel: string) => pathToFileURL(join(ws.dir, rel)).href;
const nExplained = (sink: FakeClientSink) => sink.statuses.filter((s) => s.kind === 'explained').length;

describe('hover', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => { s = await start({ hoverWaitMs: 60_000 }); });
  after(() => s.server.shutdown());

  it('declares hovers, code lenses and incremental sync', () => {
    assert.equal(s.init.capabilities.hoverProvider, true);
    assert.deepEqual(s.init.capabilities.codeLensProvider, { resolveProvider: false });
    assert.deepEqual(s.init.capabilities.textDocumentSync, { openClose: true, change: 2 });
  });

  it('explains a Markdown image link: no thumbnail (VS Code previews it), size, cold badge with TTFT, the explanation, links', async () => {
    const uri = s.open('docs/README.md', 'markdown', '# Doc\n\nThe flow: ![flow](c.png "Flow").\n');
    const h = await s.hoverAt(uri, 'flow]');
    const v = value(h);
    assert.match(v, /^\*\*docs\/c\.png\*\* · 40 × 30 px · cold · TTFT \d+ ms\n\n/);
    assert.doesNotMatch(v, /data:image/);
    assert.deepEqual(h!.range, { start: { line: 2, character: 10 }, end: { line: 2, character: 31 } });
    const status = s.sink.statuses.find((x) => x.kind === 'explained') as ExplainedStatus;
    assert.equal(status.image, fileUri('docs/c.png'));
    const args = encodeURIComponent(JSON.stringify([fileUri('docs/c.png')]));
    const links = `[$(comment-discussion) Ask about this image…](command:vlcache.askAboutImage?${args} "Ask VLCache a question about docs/c.png")` +
      ` · [$(lightbulb) Explain](command:vlcache.explainDiagram?${args} "Explain docs/c.png in the answer view")`;
    assert.ok(v.endsWith(`${status.text.trim().replace(/\$\(/g, '\\$(') || '_(the model gave no explanation)_'}\n\n${links}`), v);
    // Another reference form (same bytes) is served from the explanation cache, with our thumbnail: VS Code shows none there.
    const py = s.open('tools/plot.py', 'python', "img = open('../docs/c.png', 'rb')\n");
    const pv = value(await s.hoverAt(py, 'docs'));
    assert.match(pv, /^!\[docs\/c\.png\]\(data:image\/png;base64,[A-Za-z0-9+/=]+\)\n\n/);
    assert.equal(pv.slice(pv.indexOf('**')), v);
    assert.equal(nExplained(s.sink), 1);
  });

  it('thumbnails are PNGs of at most 160 px on the long side', async () => {
    const r = await s.server.explain({ image: 'docs/diagram.png' });
    const png = Buffer.from(r.thumbnail!.split(',')[1], 'base64');
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    const [w, h] = [png.readUInt32BE(16), png.readUInt32BE(20)];
    assert.equal(Math.max(w, h), Math.min(160, Math.max(r.width!, r.height!)));
  });

  it('answers no hover for missing files, files outside the workspace, and places without a reference', async () => {
    const uri = s.open('docs/links.md', 'markdown',
      'A ![gone](nope.png) B ![out](../../outside.png) C ![link](https://x.org/a.png) D plain text\n');
    for (const marker of ['gone', 'out]', 'link', 'plain']) assert.equal(await s.hoverAt(uri, marker), null, marker);
    assert.equal(await s.server.hover({ textDocument: { uri: 'file:///not/open.md' }, position: { line: 0, character: 0 } }), null);
  });

  it('says so when a file with an image extension is not an image', async () => {
    const uri = s.open('index.html', 'html', '<img src="docs/fake.png">');
    assert.match(value(await s.hoverAt(uri, 'fake')), /⚠ .*fake\.png is not an image/);
  });
});

describe('hover that does not block typing', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => { s = await start({ hoverWaitMs: 0 }); });
  after(() => s.server.shutdown());

  it('answers "being prepared" at once, finishes in the background, and sends explained', async () => {
    const uri = s.open('app.ts', 'typescript', 'const logo = "docs/d.png";\n');
    const done = s.explained(fileUri('docs/d.png'));
    const pending = value(await s.hoverAt(uri, 'docs'));
    assert.match(pending, /^!\[docs\/d\.png\]\(data:image\/png;base64,/);
    assert.match(pending, /\*\*docs\/d\.png\*\* · 30 × 40 px · no explanation cached yet\n\n_The explanation is being prepared/);
    assert.match(pending, /command:vlcache\.askAboutImage\?/);
    const status = await done;
    const ready = value(await s.hoverAt(uri, 'docs'));
    assert.match(ready, /· (⚡ image cached|cold) · TTFT \d+ ms/);
    assert.ok(ready.includes(status.text.trim()));
  });

  it('computes an image once for concurrent hovers and explains', async () => {
    const uri = s.open('page.md', 'markdown', '![e](docs/e.png) and <img src="docs/e.png">\n');
    const before = nExplained(s.sink);
    const all = await Promise.all([s.hoverAt(uri, '[e]'), s.hoverAt(uri, 'img'),
      s.server.explain({ image: 'docs/e.png', wait: true }), s.server.explain({ image: fileUri('docs/e.png') })]);
    assert.equal(all[2].state, 'ready');
    assert.equal(nExplained(s.sink), before + 1);
  });

  it('a cancelled hover stops waiting but not the explanation', async () => {
    const withWait = await start({ hoverWaitMs: 60_000, cacheDir: undefined });
    try {
      const uri = withWait.open('c.md', 'markdown', '![a](a.png)');
      const done = withWait.explained(fileUri('a.png'));
      const controller = new AbortController();
      const h = withWait.hoverAt(uri, 'a]', controller.signal);
      controller.abort();
      await assert.rejects(h, (e: unknown) => e instanceof ResponseError && e.code === LSPErrorCodes.RequestCancelled);
      await done;
      assert.match(value(await withWait.hoverAt(uri, 'a]')), /TTFT/);
    } finally {
      await withWait.server.shutdown();
    }
  });

  it('runs explanations at background priority: an ask queued later goes first', async () => {
    const order: string[] = [];
    const done = s.explained(fileUri('b.png')).then(() => { order.push('explained'); });
    let asked: Promise<unknown> | undefined;
    s.sink.onPartial = () => {
      if (asked) return;
      // The first ask is running: queue the explanation, then an interactive ask (both synchronously).
      void s.server.explain({ image: 'b.png' });
      asked = s.server.ask({ images: ['a.png'], question: 'Later?', maxTokens: 1 }).then(() => { order.push('ask'); });
    };
    await s.server.ask({ images: ['docs/diagram.png'], question: 'First?', maxTokens: 4, partialResultToken: 'first' });
    s.sink.onPartial = undefined;
    assert.ok(asked, 'the first ask streamed nothing: the explanation and the later ask were never queued while it ran');
    await Promise.all([asked, done]);
    assert.deepEqual(order, ['ask', 'explained']);
  });
});

describe('explanations across restarts', () => {
  it('are persisted in the cache directory and served by a new server without loading the model', async () => {
    writeFileSync(join(ws.dir, 'docs', 'p.png'), patternPng(20, 20, 9));
    const a = await start();
    const r = await a.server.explain({ image: 'docs/p.png', wait: true });
    assert.equal(r.state, 'ready');
    await a.server.shutdown();
    assert.ok(existsSync(join(ws.cacheDir, EXPLANATIONS_FILE)));

    const b = await start();
    const again = await b.server.explain({ image: 'docs/p.png' });
    assert.deepEqual({ ...again, thumbnail: undefined }, { ...r, thumbnail: undefined });
    assert.equal(b.server.stats().model.state, 'unloaded');
    // Clearing the workspace cache forgets them.
    await b.server.clearCache();
    assert.equal((await b.server.explain({ image: 'docs/p.png' })).state, 'pending');
    await b.server.shutdown();
  });
});

describe('explain errors', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => { s = await start({ cacheDir: undefined }); });
  after(() => s.server.shutdown());

  it('refuses outside paths, missing files and non-images with structured errors', async () => {
    const code = (c: number, re: RegExp) => (e: unknown) => e instanceof ResponseError && e.code === c && re.test(e.message);
    await assert.rejects(s.server.explain({ image: ws.outside }), code(ErrorCodes.PathOutsideWorkspace, /outside the workspace/));
    await assert.rejects(s.server.explain({ image: 'nope.png' }), code(ErrorCodes.InvalidImage, /no such image file/));
    await assert.rejects(s.server.explain({ image: 'docs/fake.png' }), code(ErrorCodes.InvalidImage, /is not an image/));
    await assert.rejects(s.server.explain({ image: '' }), code(ErrorCodes.InvalidParams, /needs an image/));
  });
});

describe('hover: false', () => {
  it('declares no hover capability and answers no hovers', async () => {
    const s = await start({ hover: false });
    assert.equal(s.init.capabilities.hoverProvider, undefined);
    const uri = s.open('x.md', 'markdown', '![a](a.png)');
    assert.equal(await s.hoverAt(uri, 'a]'), null);
    assert.equal(s.server.codeLens({ textDocument: { uri } }).length, 2); // Code lenses stay.
    await s.server.shutdown();
  });
});

describe('code lenses', () => {
  it('puts Ask and Explain on each Markdown image link and <img> tag naming a workspace image', async () => {
    const s = await start();
    const md = s.open('docs/guide.md', 'markdown', [
      '![c](c.png) ![missing](missing.png) ![out](../../outside.png) ![text](fake.png)',
      '![ref][d]',
      '<img src="/a.png">',
      'Code: "b.png" is a string, not a link.',
      '',
      '[d]: ./d.png',
    ].join('\n'));
    const lenses = s.server.codeLens({ textDocument: { uri: md } });
    assert.deepEqual(lenses.map((l) => [l.range.start.line, l.command!.command, l.command!.arguments]), [
      [0, 'vlcache.askAboutImage', [fileUri('docs/c.png')]], [0, 'vlcache.explainDiagram', [fileUri('docs/c.png')]],
      [1, 'vlcache.askAboutImage', [fileUri('docs/d.png')]], [1, 'vlcache.explainDiagram', [fileUri('docs/d.png')]],
      [2, 'vlcache.askAboutImage', [fileUri('a.png')]], [2, 'vlcache.explainDiagram', [fileUri('a.png')]],
    ]);
    assert.deepEqual(lenses.slice(0, 2).map((l) => l.command!.title), ['$(comment-discussion) Ask about image', '$(lightbulb) Explain diagram']);
    const html = s.open('site/index.html', 'html', '<body>\n  <img alt="x" src="../b.png">\n</body>');
    assert.deepEqual(s.server.codeLens({ textDocument: { uri: html } }).map((l) => l.range.start), [
      { line: 1, character: 2 }, { line: 1, character: 2 }]);
    await s.server.shutdown();
  });

  it('offers none on a file that only has an image name, until it holds an image (issue 11)', async () => {
    const s = await start();
    const md = s.open('docs/text.md', 'markdown', '![t](later.png)');
    writeFileSync(join(ws.dir, 'docs', 'later.png'), 'just text, named like an image');
    assert.deepEqual(s.server.codeLens({ textDocument: { uri: md } }), []);
    writeFileSync(join(ws.dir, 'docs', 'later.png'), patternPng(20, 20, 9)); // new size: checked again
    assert.equal(s.server.codeLens({ textDocument: { uri: md } }).length, 2);
    await s.server.shutdown();
  });
});
