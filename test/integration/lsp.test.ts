/**
 * The daemon over a real LSP connection: in-process over crossed in-memory streams,
 * and as a spawned `node dist/cli.js serve --stdio` process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  CancellationTokenSource, createProtocolConnection, InitializeRequest, ShutdownRequest, ExitNotification,
  StreamMessageReader, StreamMessageWriter, ResponseError, type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { listen } from '../../server/src/main';
import { AskPartialResultType, AskRequest, PROTOCOL_VERSION, StatsRequest, StatusNotification, ErrorCodes } from '../../server/src/protocol';
import type { StatusParams } from '../../server/src/protocol';
import { initializeParams, makeWorkspace, repoRoot, type Workspace } from '../support/server-fixture';

let ws: Workspace;
before(() => {
  ws = makeWorkspace();
  process.env.VLCACHE_HOME = ws.home;
});

/** Initialize, one streamed ask, a cancelled ask, and a refused path: the same on both transports. */
async function exercise(client: ProtocolConnection): Promise<void> {
  const statuses: StatusParams[] = [];
  client.onNotification(StatusNotification.type, (s) => { statuses.push(s); });
  const init = await client.sendRequest(InitializeRequest.type, initializeParams(ws));
  assert.equal((init as { protocolVersion?: number }).protocolVersion, PROTOCOL_VERSION);

  let streamed = '';
  const sub = client.onProgress(AskPartialResultType, 'p1', (v) => { streamed += v.delta; });
  const r = await client.sendRequest(AskRequest.type, { images: ['docs/diagram.png'], question: 'What does this show?', maxTokens: 8, partialResultToken: 'p1' });
  sub.dispose();
  assert.ok(r.nGeneratedTokens > 0);
  assert.equal(streamed, r.text);
  assert.ok(statuses.some((s) => s.kind === 'ready' && s.device === 'cpu'), JSON.stringify(statuses.map((s) => s.kind)));

  // $/cancelRequest after the first streamed piece: generation stops between steps.
  const source = new CancellationTokenSource();
  const sub2 = client.onProgress(AskPartialResultType, 'p2', () => source.cancel());
  const c = await client.sendRequest(AskRequest.type, { images: ['a.png'], question: 'Describe every detail at length.', maxTokens: 200, partialResultToken: 'p2' }, source.token);
  sub2.dispose();
  assert.equal(c.stopReason, 'cancelled');

  await assert.rejects(client.sendRequest(AskRequest.type, { images: [ws.outside], question: 'What is it?' }), (e: unknown) =>
    e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace);
  const stats = await client.sendRequest(StatsRequest.type, {});
  assert.equal(stats.requests.nAsks, 2);
}

describe('the daemon over in-memory streams', () => {
  it('initializes, streams an answer, honours $/cancelRequest and refuses outside paths', async () => {
    const up = new PassThrough(), down = new PassThrough(); // client -> server, server -> client
    // Message readers/writers (not raw streams): with raw streams the library exits the process when they end.
    const serverConnection = createConnection(ProposedFeatures.all, new StreamMessageReader(up), new StreamMessageWriter(down));
    listen(serverConnection);
    const client = createProtocolConnection(new StreamMessageReader(down), new StreamMessageWriter(up));
    client.listen();
    await exercise(client);
    await client.sendRequest(ShutdownRequest.type);
    client.dispose();
    serverConnection.dispose();
  });
});

describe('vlcache serve --stdio', () => {
  let child: ChildProcess;
  let exited: Promise<number | null>;
  before(() => {
    child = spawn(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'serve', '--stdio'], {
      env: { ...process.env, VLCACHE_HOME: ws.home }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stderr!.resume(); // The engine's log lines; read so the pipe never fills.
    exited = new Promise((r) => child.once('exit', (code) => r(code)));
  });
  after(() => { if (child.exitCode === null) child.kill(); });

  it('serves the protocol on stdio and exits after shutdown and exit', async () => {
    const client = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    client.listen();
    await exercise(client);
    await client.sendRequest(ShutdownRequest.type);
    await client.sendNotification(ExitNotification.type);
    assert.equal(await exited, 0);
    client.dispose();
  });
});
