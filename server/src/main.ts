/**
 * The daemon's LSP connection: createConnection and one line per handler. The only
 * importer of vscode-languageserver/node. Started as `vlcache serve --stdio`
 * (dist/cli.js): the extension spawns the same bundle as the CLI, so there is one
 * server build to ship and onnxruntime-node stays external in one place.
 */
import { createConnection, ProposedFeatures, StreamMessageWriter, TextDocuments, type Connection } from 'vscode-languageserver/node';
import type { ResponseMessage } from 'vscode-languageserver-protocol';
import { FramedMessageReader, MAX_MESSAGE_BYTES } from './message-reader';
import type { CancellationToken } from 'vscode-languageserver-protocol';
import { VlcacheServer, type ClientSink } from './server';
import { AskRequest } from './protocol/ask';
import { ClearCacheRequest } from './protocol/clear-cache';
import { ExplainRequest } from './protocol/explain';
import { GpuInstallRequest } from './protocol/gpu-install';
import { gpuInstall } from './gpu-install-handler';
import { DownloadModelRequest } from './protocol/download-model';
import { downloadModelRequest } from './download-model-handler';
import { textDocuments } from './hover/text-document';
import { PrefetchRequest } from './protocol/prefetch';
import { StatsRequest } from './protocol/stats';
import { StatusNotification } from './protocol/status';
import { WorkDoneProgress } from 'vscode-languageserver-protocol';

/** Wires a VlcacheServer to a connection (stdio, or streams in tests) and starts listening. */
export function listen(connection: Connection): VlcacheServer {
  const sink: ClientSink = {
    sendStatus: (p) => void connection.sendNotification(StatusNotification.type, p),
    sendPartialResult: (type, token, value) => void connection.sendProgress(type, token, value as never),
    sendWorkDone: (token, value) => void connection.sendProgress(WorkDoneProgress.type, token, value),
    log: (m) => connection.console.log(m),
  };
  const documents = new TextDocuments(textDocuments);
  const server = new VlcacheServer(sink, documents);
  connection.onInitialize((params) => server.initialize(params));
  connection.onInitialized(() => {
    // Only a client that announced workspace-folder support sends the changes (VS Code does).
    try {
      connection.workspace.onDidChangeWorkspaceFolders((e) => server.workspaceFoldersChanged(e));
    } catch {
      // A client without workspace folders: the folders given at initialize stay.
    }
  });
  connection.onHover((params, token) => server.hover(params, abortSignal(token)));
  connection.onCodeLens((params) => server.codeLens(params));
  connection.onRequest(ExplainRequest.type, (params, token) => server.explain(params, abortSignal(token)));
  connection.onRequest(AskRequest.type, (params, token) => server.ask(params, abortSignal(token)));
  connection.onRequest(StatsRequest.type, () => server.stats());
  connection.onRequest(ClearCacheRequest.type, (_params, token) => server.clearCache(abortSignal(token)));
  connection.onRequest(PrefetchRequest.type, (params, token) => server.prefetch(params, abortSignal(token)));
  connection.onRequest(GpuInstallRequest.type, (params, token) => gpuInstall(params, sink, abortSignal(token)));
  connection.onRequest(DownloadModelRequest.type, (params, token) => downloadModelRequest(params, sink, abortSignal(token)));
  connection.onShutdown(() => server.shutdown());
  documents.onDidOpen((e) => server.documentOpened(e.document.uri));
  documents.listen(connection);
  connection.listen();
  return server;
}

/** `vlcache serve --stdio`. Exits on the client's `exit` notification (vscode-languageserver's own handler). */
export function serveStdio(): void {
  // NOTE: stdout carries the protocol; anything written there by accident would corrupt it.
  console.log = console.error;
  const connection = createConnection(ProposedFeatures.all, ...framedStreams(process.stdin, process.stdout));
  process.on('uncaughtException', (e) => {
    connection.console.error(`vlcache: uncaught exception: ${e?.stack ?? String(e)}`);
  });
  process.on('unhandledRejection', (e) => {
    connection.console.error(`vlcache: unhandled rejection: ${(e as Error)?.stack ?? String(e)}`);
  });
  listen(connection);
}

/**
 * The reader and writer of a connection over byte streams, with the strict framing of
 * message-reader.ts: framing errors are answered through the same writer and the stream
 * recovers, instead of going silent.
 */
export function framedStreams(input: NodeJS.ReadableStream, output: NodeJS.WritableStream,
  maxMessageBytes = MAX_MESSAGE_BYTES): [FramedMessageReader, StreamMessageWriter] {
  const writer = new StreamMessageWriter(output);
  const reader = new FramedMessageReader(input, {
    maxMessageBytes,
    reply: (error, id = null) => void writer.write({ jsonrpc: '2.0', id, error } as ResponseMessage),
  });
  return [reader, writer];
}

function abortSignal(token: CancellationToken): AbortSignal {
  const c = new AbortController();
  if (token.isCancellationRequested) c.abort();
  else token.onCancellationRequested(() => c.abort());
  return c.signal;
}
