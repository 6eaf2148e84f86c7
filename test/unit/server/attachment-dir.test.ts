/**
 * `initializationOptions.attachmentDir`: images the editor wrote itself (pasted into Chat) are read like
 * workspace images, created when missing; other folders outside the workspace stay refused.
 * The real server and engine on the built-in model (CPU).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ResponseError } from 'vscode-languageserver-protocol';
import { VlcacheServer } from '../../../server/src/server';
import { ErrorCodes } from '../../../server/src/protocol/errors';
import { FakeClientSink, initializeParams, makeWorkspace, type Workspace } from '../../support/server-fixture';

describe('attachmentDir', () => {
  let ws: Workspace;
  let server: VlcacheServer;
  let attachments: string;
  before(async () => {
    ws = makeWorkspace();
    process.env.VLCACHE_HOME = ws.home;
    attachments = join(dirname(ws.dir), 'global-storage', 'chat-images');
    server = new VlcacheServer(new FakeClientSink());
    await server.initialize(initializeParams(ws, { attachmentDir: attachments }));
  });
  after(() => server.shutdown());

  it('is created at initialize and its images can be asked about', async () => {
    assert.ok(existsSync(attachments));
    const pasted = join(attachments, 'pasted.png');
    copyFileSync(ws.outside, pasted);
    const r = await server.ask({ images: [pathToFileURL(pasted).href], question: 'What is it?', maxTokens: 1 });
    assert.equal(r.images.length, 1);
  });

  it('does not open other folders outside the workspace', async () => {
    await assert.rejects(server.ask({ images: [ws.outside], question: 'What is it?' }), (e: unknown) =>
      e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace);
  });

  it('must be an absolute path', async () => {
    const s = new VlcacheServer(new FakeClientSink());
    await assert.rejects(s.initialize(initializeParams(ws, { attachmentDir: 'relative/dir' })), /attachmentDir takes an absolute path/);
  });
});
