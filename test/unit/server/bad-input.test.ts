/**
 * Bad input at the daemon: a non-image with an image extension, an image that
 * disappears or changes while queued or answered, a huge screenshot.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ResponseError } from 'vscode-languageserver-protocol';
import { VlcacheServer } from '../../../server/src/server';
import { ErrorCodes } from '../../../server/src/protocol/errors';
import { patternPng } from '../../support/images';
import { FakeClientSink, initializeParams, makeWorkspace, type Workspace } from '../../support/server-fixture';

let ws: Workspace;
let sink: FakeClientSink;
let server: VlcacheServer;
before(async () => {
  ws = makeWorkspace();
  process.env.VLCACHE_HOME = ws.home;
  sink = new FakeClientSink();
  server = new VlcacheServer(sink);
  await server.initialize(initializeParams(ws, { cacheDir: undefined }));
});
after(() => server.shutdown());

const invalidImage = (re: RegExp) => (e: unknown) => e instanceof ResponseError && e.code === ErrorCodes.InvalidImage && re.test(e.message);

/** Runs `during` once, when the first piece of a long ask about docs/diagram.png streams (that ask is running). */
async function whileAnswering(during: () => void): Promise<void> {
  let done = false;
  sink.onPartial = () => {
    if (done) return;
    done = true;
    during();
  };
  await server.ask({ images: ['docs/diagram.png'], question: 'Describe it.', maxTokens: 3, partialResultToken: 'long' });
  sink.onPartial = undefined;
  assert.ok(done, 'the ask streamed nothing, so nothing ran while it was answering');
}

describe('bad input', () => {
  it('answers a non-image with an image extension with InvalidImage saying what it is', async () => {
    writeFileSync(join(ws.dir, 'notes.png'), 'Meeting notes, not a picture.\n');
    await assert.rejects(server.ask({ images: ['notes.png'], question: 'What is it?' }),
      invalidImage(/notes\.png is not an image \(starts with 'Meet'\); expected PNG, JPEG, WebP or GIF/));
    writeFileSync(join(ws.dir, 'cut.png'), patternPng(32, 32, 1).subarray(0, 60));
    await assert.rejects(server.ask({ images: ['cut.png'], question: 'What is it?' }), invalidImage(/cut\.png/));
  });

  it('answers an image that disappears while its ask is queued with InvalidImage "no such image file"', async () => {
    writeFileSync(join(ws.dir, 'gone.png'), patternPng(32, 32, 2));
    let queued: Promise<unknown> | undefined;
    await whileAnswering(() => {
      queued = server.ask({ images: ['gone.png'], question: 'Still there?' });
      unlinkSync(join(ws.dir, 'gone.png'));
    });
    await assert.rejects(queued!, invalidImage(/gone\.png: no such image file/));
  });

  it('answers about the bytes read when the ask starts, even if the file changes meanwhile', async () => {
    const path = join(ws.dir, 'changing.png');
    writeFileSync(path, patternPng(64, 48, 3));
    sink.onPartial = () => writeFileSync(path, patternPng(48, 64, 4));
    const r = await server.ask({ images: ['changing.png'], question: 'Size?', maxTokens: 3, partialResultToken: 'changing' });
    sink.onPartial = undefined;
    assert.deepEqual([r.images[0].width, r.images[0].height], [64, 48]);
    const again = await server.ask({ images: ['changing.png'], question: 'Size?', maxTokens: 1 });
    assert.deepEqual([again.images[0].width, again.images[0].height, again.cache.encoderHits], [48, 64, 0]);
  });

  it('downscales a huge screenshot to the model\'s max pixels and says so', async () => {
    // 1200 x 900 = 1.08 MP > the built-in model's max_pixels 200704 (448 x 448).
    writeFileSync(join(ws.dir, 'huge.png'), patternPng(1200, 900, 5));
    writeFileSync(join(ws.dir, 'small.png'), patternPng(400, 300, 6));
    const r = await server.ask({ images: ['huge.png', 'small.png'], question: 'What is it?', maxTokens: 1 });
    assert.deepEqual(r.images.map((i) => [i.width, i.height, i.downscaled]), [[1200, 900, true], [400, 300, false]]);
    assert.ok(r.images[0].nTokens <= 200704 / (28 * 28));
  });

  it('downscales to the maxPixels setting below the model\'s own limit', async () => {
    const capped = new VlcacheServer(new FakeClientSink());
    await capped.initialize(initializeParams(ws, { cacheDir: undefined, maxPixels: 50_000 }));
    const r = await capped.ask({ images: ['small.png'], question: 'What is it?', maxTokens: 1 });
    assert.equal(r.images[0].downscaled, true);
    assert.ok(r.images[0].nTokens <= 50_000 / (28 * 28));
    await capped.shutdown();
  });

  it('refuses a FIFO, a link to /dev/zero and a folder named like an image at once, with InvalidImage', async () => {
    // Reading any of these used to hang the daemon (a FIFO blocks, /dev/zero never ends).
    execFileSync('mkfifo', [join(ws.dir, 'pipe.png')]);
    symlinkSync('/dev/zero', join(ws.dir, 'zero.png'));
    mkdirSync(join(ws.dir, 'folder.png'));
    await assert.rejects(server.ask({ images: ['pipe.png'], question: 'What is it?' }), invalidImage(/pipe\.png is not a regular file/));
    await assert.rejects(server.ask({ images: ['folder.png'], question: 'What is it?' }), invalidImage(/folder\.png is a folder/));
    // /dev/zero is outside the workspace: refused by the path check before it is opened.
    await assert.rejects(server.ask({ images: ['zero.png'], question: 'What is it?' }),
      (e: unknown) => e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace);
  });

  it('checks the workspace boundary when the queued ask reads the image, not when it was queued', async () => {
    // sub/pic.png is inside when queued; before it runs, sub becomes a link to a folder outside.
    const sub = join(ws.dir, 'sub');
    const outsideDir = join(dirname(ws.dir), 'elsewhere');
    mkdirSync(sub);
    mkdirSync(outsideDir);
    writeFileSync(join(sub, 'pic.png'), patternPng(32, 32, 7));
    writeFileSync(join(outsideDir, 'pic.png'), patternPng(32, 32, 8));
    let queued: Promise<unknown> | undefined;
    await whileAnswering(() => {
      queued = server.ask({ images: ['sub/pic.png'], question: 'Whose picture?' });
      renameSync(sub, join(ws.dir, 'sub-old'));
      symlinkSync(outsideDir, sub);
    });
    await assert.rejects(queued!, (e: unknown) => e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace
      && /outside the workspace/.test(e.message));
  });
});
