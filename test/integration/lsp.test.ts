/**
 * The daemon over a real LSP connection: in-process over crossed in-memory streams,
 * and as a spawned `node dist/cli.js serve --stdio` process; and what a client sees
 * when the daemon crashes or hangs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import {
  CancellationTokenSource, CodeLensRequest, createProtocolConnection, DidChangeTextDocumentNotification,
  DidChangeWorkspaceFoldersNotification, DidOpenTextDocumentNotification, ErrorCodes as RpcErrorCodes, ExitNotification,
  HoverRequest, InitializedNotification, InitializeRequest,
  LSPErrorCodes, RequestType0, ResponseError, ShutdownRequest, StreamMessageReader, StreamMessageWriter,
  type CancellationToken, type Hover, type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { listen } from '../../server/src/main';
import {
  AskPartialResultType, AskRequest, ErrorCodes, ExplainRequest, PROTOCOL_VERSION, StatsRequest, StatusNotification,
  type InitializationOptions, type StatusParams,
} from '../../server/src/protocol';
import { initializeParams, makeWorkspace, repoRoot, type Workspace } from '../support/server-fixture';

let ws: Workspace;
before(() => {
  ws = makeWorkspace();
  process.env.VLCACHE_HOME = ws.home;
});

/** The statuses the server sent, and a way to wait for the next of a kind (one handler per method: it replaces). */
class Statuses extends Array<StatusParams> {
  private waiters: { kind: StatusParams['kind']; resolve: (s: StatusParams) => void }[] = [];
  add(s: StatusParams): void {
    this.push(s);
    for (const w of this.waiters.filter((w) => w.kind === s.kind)) w.resolve(s);
    this.waiters = this.waiters.filter((w) => w.kind !== s.kind);
  }
  next<K extends StatusParams['kind']>(kind: K): Promise<Extract<StatusParams, { kind: K }>> {
    return new Promise((resolve) => this.waiters.push({ kind, resolve: resolve as (s: StatusParams) => void }));
  }
}

/**
 * A random-weight checkpoint (the golden tests' tiny Qwen2-VL): its answers run to
 * maxTokens, so a cancellation always lands mid-generation. The trained built-in model
 * answers in one or two tokens and would end before the cancellation arrives.
 */
const RANDOM_MODEL = join(repoRoot, 'test', 'golden', 'fixtures', 'qwen2vl-tiny');

/** Initializes, recording the statuses the server sends. */
async function initialize(client: ProtocolConnection, options: InitializationOptions = {}): Promise<Statuses> {
  const statuses = new Statuses();
  client.onNotification(StatusNotification.type, (s) => statuses.add(s));
  const init = await client.sendRequest(InitializeRequest.type, initializeParams(ws, { modelPath: RANDOM_MODEL, ...options }));
  assert.equal((init as { protocolVersion?: number }).protocolVersion, PROTOCOL_VERSION);
  assert.equal(init.capabilities.hoverProvider, true);
  return statuses;
}

/** One streamed ask, a cancelled ask, and a refused path. */
async function exerciseAsk(client: ProtocolConnection, statuses: Statuses): Promise<void> {
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
  assert.ok(c.nGeneratedTokens < 200);

  await assert.rejects(client.sendRequest(AskRequest.type, { images: [ws.outside], question: 'What is it?' }), (e: unknown) =>
    e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace);
  const stats = await client.sendRequest(StatsRequest.type, {});
  assert.equal(stats.requests.nAsks, 2);
  assert.equal(stats.requests.recent.length, 2);
}

/** didOpen, a hover on nothing, didChange adding an image link, a pending hover, `explained`, code lenses, explain. */
async function exerciseEditor(client: ProtocolConnection, statuses: Statuses): Promise<void> {
  const uri = pathToFileURL(join(ws.dir, 'notes.md')).href;
  const hover = (line: number, character: number) =>
    client.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line, character } }) as Promise<Hover | null>;
  await client.sendNotification(DidOpenTextDocumentNotification.type,
    { textDocument: { uri, languageId: 'markdown', version: 1, text: '# Notes\n\nNothing yet.\n' } });
  assert.equal(await hover(2, 2), null);
  await client.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: 2 }, contentChanges: [
    { range: { start: { line: 2, character: 0 }, end: { line: 2, character: 12 } }, text: 'See ![arch](docs/diagram.png).' }] });
  const explained = statuses.next('explained');
  const pending = await hover(2, 8); // answered at once
  assert.match((pending!.contents as { value: string }).value, /^\*\*docs\/diagram\.png\*\* · \d+ × \d+ px · no explanation cached yet\n\n.*being prepared/s);
  const { text } = await explained;
  const ready = (await hover(2, 8))!.contents as { value: string };
  assert.match(ready.value, /docs\/diagram\.png\*\* · \d+ × \d+ px · (cold|⚡ image cached) · TTFT \d+ ms/);
  assert.ok(ready.value.includes(`\n\n${text.trim().replace(/\$\(/g, "\\$(") || "_(the model gave no explanation)_"}\n\n[$(comment-discussion) Ask`), 'the hover shows the explanation');

  const lenses = await client.sendRequest(CodeLensRequest.type, { textDocument: { uri } });
  assert.deepEqual(lenses?.map((l) => [l.command?.command, l.command?.arguments]), [
    ['vlcache.askAboutImage', [pathToFileURL(join(ws.dir, 'docs', 'diagram.png')).href]],
    ['vlcache.explainDiagram', [pathToFileURL(join(ws.dir, 'docs', 'diagram.png')).href]]]);
  const ex = await client.sendRequest(ExplainRequest.type, { image: 'docs/diagram.png', wait: true });
  assert.equal(ex.state, 'ready');
  assert.equal(ex.text, text);
}

/** A crossed pair of in-memory streams with the daemon on one end; returns the client end. */
function inMemoryDaemon() {
  const up = new PassThrough(), down = new PassThrough(); // client -> server, server -> client
  // Message readers/writers (not raw streams): with raw streams the library exits the process when they end.
  const serverConnection = createConnection(ProposedFeatures.all, new StreamMessageReader(up), new StreamMessageWriter(down));
  listen(serverConnection);
  const client = createProtocolConnection(new StreamMessageReader(down), new StreamMessageWriter(up));
  client.listen();
  return { client, serverConnection };
}

/** `vlcache serve --stdio` as a child process, and a client connection to it. */
function spawnDaemon() {
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'serve', '--stdio'], {
    env: { ...process.env, VLCACHE_HOME: ws.home }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderr!.resume(); // The engine's log lines; read so the pipe never fills.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const client = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  client.listen();
  return { child, exited, client };
}

/**
 * Resolves once more than `since` bytes were written to the child's stdin and none wait in
 * Node's buffer: the OS pipe has them, whether or not the child reads.
 */
async function handedToThePipe(child: ChildProcess, since: number): Promise<void> {
  const stdin = child.stdin as Socket; // stdio 'pipe': a net.Socket
  const end = Date.now() + 10_000;
  while (stdin.bytesWritten <= since || stdin.writableLength > 0) {
    if (Date.now() > end) throw new Error(`nothing was written to the daemon's stdin within 10 s (${stdin.bytesWritten} bytes)`);
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * What an editor does with a request it cancels: stop waiting at once (VS Code does so
 * for its own providers; the extension does so for vlcache/* requests), whether or not
 * the server ever answers.
 */
function untilCancelled<T>(request: Promise<T>, token: CancellationToken): Promise<T> {
  return Promise.race([request, new Promise<never>((_, reject) => token.onCancellationRequested(() =>
    reject(new ResponseError(LSPErrorCodes.RequestCancelled, 'cancelled by the client'))))]);
}

describe('the daemon over in-memory streams', () => {
  it('initializes, streams an answer, honours $/cancelRequest and refuses outside paths', async () => {
    const { client, serverConnection } = inMemoryDaemon();
    const statuses = await initialize(client, { cacheDir: join(ws.home, 'cache-mem'), hoverWaitMs: 0 });
    await exerciseAsk(client, statuses);
    await exerciseEditor(client, statuses);
    await client.sendRequest(ShutdownRequest.type);
    client.dispose();
    serverConnection.dispose();
  });

  it('follows workspace/didChangeWorkspaceFolders from a client that announces folder support', async () => {
    const { client, serverConnection } = inMemoryDaemon();
    const params = initializeParams(ws, { cacheDir: join(ws.home, 'cache-folders'), modelPath: RANDOM_MODEL });
    const init = await client.sendRequest(InitializeRequest.type, { ...params, capabilities: { workspace: { workspaceFolders: true } } });
    assert.deepEqual(init.capabilities.workspace?.workspaceFolders, { supported: true, changeNotifications: true });
    await client.sendNotification(InitializedNotification.type, {});
    const ask = () => client.sendRequest(AskRequest.type, { images: [ws.outside], question: 'What is it?', maxTokens: 1 });
    await assert.rejects(ask(), (e: unknown) => e instanceof ResponseError && e.code === ErrorCodes.PathOutsideWorkspace);
    const parent = { uri: pathToFileURL(dirname(ws.outside)).href, name: 'parent' };
    await client.sendNotification(DidChangeWorkspaceFoldersNotification.type, { event: { added: [parent], removed: [] } });
    assert.equal((await ask()).images.length, 1);
    await client.sendRequest(ShutdownRequest.type);
    client.dispose();
    serverConnection.dispose();
  });

  it('stays responsive while a handler never answers, and the client stops waiting when it cancels', async () => {
    const { client, serverConnection } = inMemoryDaemon();
    let serverSawCancel!: () => void;
    const cancelled = new Promise<void>((r) => { serverSawCancel = r; });
    const hangType = new RequestType0<never, void>('test/hang');
    serverConnection.onRequest(hangType, (token) => {
      token.onCancellationRequested(() => serverSawCancel());
      return new Promise<never>(() => {}); // never answers
    });
    await initialize(client, { cacheDir: undefined });
    const source = new CancellationTokenSource();
    const hung = untilCancelled(client.sendRequest(hangType, source.token), source.token);
    // Other requests are answered meanwhile, on the same connection.
    const r = await client.sendRequest(AskRequest.type, { images: ['a.png'], question: 'Hi?', maxTokens: 1 });
    assert.ok(r.nPromptTokens > 0);
    source.cancel();
    await assert.rejects(hung, (e: unknown) => e instanceof ResponseError && e.code === LSPErrorCodes.RequestCancelled);
    await cancelled; // $/cancelRequest reached the handler
    assert.equal((await client.sendRequest(StatsRequest.type, {})).requests.nAsks, 1);
    await client.sendRequest(ShutdownRequest.type);
    client.dispose();
    serverConnection.dispose();
  });
});

describe('vlcache serve --stdio', () => {
  let daemon: ReturnType<typeof spawnDaemon>;
  before(() => { daemon = spawnDaemon(); });
  after(() => { if (daemon.child.exitCode === null) daemon.child.kill(); });

  it('serves the protocol on stdio and exits after shutdown and exit', async () => {
    const { client, exited } = daemon;
    const statuses = await initialize(client, { cacheDir: join(ws.home, 'cache-stdio'), hoverWaitMs: 0 });
    await exerciseAsk(client, statuses);
    await exerciseEditor(client, statuses);
    await client.sendRequest(ShutdownRequest.type);
    await client.sendNotification(ExitNotification.type);
    assert.deepEqual(await exited, { code: 0, signal: null });
    client.dispose();
  });
});

describe('a daemon that crashes or hangs', () => {
  it('crashing mid-request: the client sees the connection close and the request fail, not a hang', async () => {
    const { child, exited, client } = spawnDaemon();
    try {
      await initialize(client, { cacheDir: undefined });
      const closed = new Promise<void>((r) => client.onClose(() => r()));
      client.onProgress(AskPartialResultType, 'crash', () => { child.kill('SIGKILL'); });
      const request = client.sendRequest(AskRequest.type, { images: ['a.png'], question: 'Describe it at length.', maxTokens: 200, partialResultToken: 'crash' });
      await closed;
      client.dispose(); // What vscode-languageclient does on close: pending requests are rejected.
      await assert.rejects(request, (e: unknown) => e instanceof ResponseError && e.code === RpcErrorCodes.PendingResponseRejected);
      assert.deepEqual(await exited, { code: null, signal: 'SIGKILL' });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('hanging (the process stopped): a cancelled request stops the waiting and the client goes on', { skip: process.platform === 'win32' }, async () => {
    const { child, exited, client } = spawnDaemon();
    try {
      await initialize(client, { cacheDir: undefined });
      child.kill('SIGSTOP'); // The daemon's event loop no longer runs: nothing is answered.
      const source = new CancellationTokenSource();
      const sent = (child.stdin as Socket).bytesWritten;
      const raw = client.sendRequest(StatsRequest.type, {}, source.token);
      const request = untilCancelled(raw, source.token);
      await handedToThePipe(child, sent); // The request has left the client: the daemon has it, unread.
      source.cancel();
      await assert.rejects(request, (e: unknown) => e instanceof ResponseError && e.code === LSPErrorCodes.RequestCancelled);
      // Once it runs again, the daemon answers what was queued on the connection: the request
      // itself (answered, or refused as cancelled), then a new one.
      child.kill('SIGCONT');
      await raw.catch((e: unknown) => assert.ok(e instanceof ResponseError && e.code === LSPErrorCodes.RequestCancelled, String(e)));
      assert.equal((await client.sendRequest(StatsRequest.type, {})).requests.nAsks, 0);
      child.kill('SIGKILL');
      await exited;
      client.dispose();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
