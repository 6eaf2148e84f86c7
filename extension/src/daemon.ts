/**
 * The daemon as the extension sees it: one `vlcache serve --stdio` child process
 * behind a LanguageClient, restarted with backoff when it dies, stopped with the
 * editor. Every vlcache/* request goes through here; nothing else imports
 * vscode-languageclient.
 *
 * Invariant: at most one LanguageClient is alive; `client` is undefined while
 * stopped, and requests made then wait for the next start.
 */
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import {
  CloseAction, ErrorAction, LanguageClient, LSPErrorCodes as ErrorCodesLsp, ResponseError, State, TransportKind, WorkDoneProgress,
  type LanguageClientOptions, type ServerOptions,
} from 'vscode-languageclient/node';
import {
  AskPartialResultType, AskRequest, ClearCacheRequest, ErrorCodes, ExplainRequest, PrefetchRequest, StatsRequest,
  StatusNotification,
  type AskParams, type AskResult, type ClearCacheResult, type ExplainParams, type ExplainResult, type PrefetchResult,
  type StatsResult, type StatusParams, type VlcacheInitializeResult,
} from '../../server/src/protocol';
import type { RequestType } from 'vscode-languageserver-protocol';
import { attachmentDir } from './chat-attachments';
import { HOVER_LANGUAGES } from './lazy-start';
import * as settings from './settings';

/** Waits between automatic restarts: 1 s, 2 s, 4 s, 8 s, 16 s; then it stays down until a manual restart. */
const RESTART_DELAYS_MS = [1000, 2000, 4000, 8000, 16000];
/** After a cancellation, how long a request waits for the daemon's own (partial) answer. */
const CANCEL_GRACE_MS = 3000;
/** A daemon that ran this long without dying resets the backoff. */
const HEALTHY_AFTER_MS = 60_000;

export type DaemonState = 'stopped' | 'starting' | 'running' | 'restarting' | 'failed';

export class Daemon implements vscode.Disposable {
  private client?: LanguageClient;
  private state: DaemonState = 'stopped';
  private startedAt = 0;
  private nCrashes = 0;
  private toldUserOfCrash = false;
  private restartTimer?: NodeJS.Timeout;
  private stopping = false;
  private ready?: Promise<LanguageClient>;
  private readonly statusEmitter = new vscode.EventEmitter<StatusParams>();
  private readonly stateEmitter = new vscode.EventEmitter<DaemonState>();
  /** `vlcache/status` notifications, and synthetic `error`s for a dead daemon. */
  readonly onStatus = this.statusEmitter.event;
  readonly onState = this.stateEmitter.event;
  /** The initialize result of the running daemon. */
  initializeResult?: VlcacheInitializeResult;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.LogOutputChannel,
  ) {}

  get currentState(): DaemonState {
    return this.state;
  }

  /** The process id of the running daemon (tests kill it to check the restart). */
  get pid(): number | undefined {
    const p = (this.client as unknown as { _serverProcess?: { pid?: number } } | undefined)?._serverProcess;
    return p?.pid;
  }

  /** Starts the daemon (idempotent). Rejects, with the output channel shown, when it cannot start. */
  start(): Promise<LanguageClient> {
    this.ready ??= this.launch().catch((e: unknown) => {
      this.ready = undefined;
      this.setState('failed');
      this.output.error(`the daemon failed to start: ${describe(e)}`);
      this.output.show(true);
      throw e;
    });
    return this.ready;
  }

  /** Stops the daemon and waits for it to exit (the model and GPU memory go with it). */
  async stop(): Promise<void> {
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const client = this.client;
    this.client = undefined;
    this.ready = undefined;
    this.initializeResult = undefined;
    if (client) {
      this.stopping = true;
      try {
        // 5 s for shutdown/exit; after that vscode-languageclient kills the process.
        if (client.state !== State.Stopped) await client.stop(5000);
      } catch (e) {
        this.output.warn(`stopping the daemon: ${describe(e)}`);
      } finally {
        this.stopping = false;
        await client.dispose().catch(() => undefined);
      }
    }
    this.setState('stopped');
  }

  /** "Restart Daemon": a clean stop and start; resets the crash backoff. */
  async restart(): Promise<void> {
    this.nCrashes = 0;
    this.toldUserOfCrash = false;
    await this.stop();
    await this.start();
  }

  /**
   * `vlcache/ask`: text deltas go to `onDelta`, the daemon's work-done messages
   * ("queued", "loading the model", "generating") to `onProgress`.
   */
  async ask(params: Omit<AskParams, 'partialResultToken' | 'workDoneToken'>, onDelta: (delta: string) => void,
    token?: vscode.CancellationToken, onProgress?: (message: string) => void): Promise<AskResult> {
    const client = await this.start();
    const partial = randomUUID();
    const work = randomUUID();
    const subs = [
      client.onProgress(AskPartialResultType, partial, (p) => onDelta(p.delta)),
      client.onProgress(WorkDoneProgress.type, work, (p) => { if (p.kind !== 'end' && p.message) onProgress?.(p.message); }),
    ];
    try {
      return await send(client, AskRequest.type, { ...params, partialResultToken: partial, workDoneToken: work }, token);
    } finally {
      for (const s of subs) s.dispose();
    }
  }

  async explain(params: ExplainParams, token?: vscode.CancellationToken): Promise<ExplainResult> {
    const client = await this.start();
    return await send(client, ExplainRequest.type, params, token);
  }

  async stats(): Promise<StatsResult> {
    const client = await this.start();
    return await send(client, StatsRequest.type, {});
  }

  async clearCache(): Promise<ClearCacheResult> {
    const client = await this.start();
    return await send(client, ClearCacheRequest.type, {});
  }

  async prefetch(images: string[], token?: vscode.CancellationToken): Promise<PrefetchResult> {
    const client = await this.start();
    return await send(client, PrefetchRequest.type, { images }, token);
  }

  dispose(): void {
    void this.stop();
    this.statusEmitter.dispose();
    this.stateEmitter.dispose();
  }

  private async launch(): Promise<LanguageClient> {
    this.setState(this.nCrashes > 0 ? 'restarting' : 'starting');
    const cli = this.context.asAbsolutePath('dist/cli.js');
    // The same bundle as the `vlcache` CLI; TransportKind.stdio appends `--stdio`.
    // Node is the extension host's own (process.execPath, ELECTRON_RUN_AS_NODE in desktop VS Code).
    const run = { module: cli, args: ['serve'], transport: TransportKind.stdio, options: { env: { ...process.env } } };
    const serverOptions: ServerOptions = { run, debug: { ...run, options: { ...run.options, execArgv: ['--inspect=6011'] } } };
    const folder = this.context.storageUri;
    const clientOptions: LanguageClientOptions = {
      // Hovers and code lenses on image references: only the languages that can hold them are synced.
      documentSelector: HOVER_LANGUAGES.map((language) => ({ scheme: 'file', language })),
      outputChannel: this.output,
      // The hover's Ask / Explain links (server/src/hover/hover.ts) run these commands and no others; $(icon) codicons.
      markdown: { isTrusted: { enabledCommands: ['vlcache.askAboutImage', 'vlcache.explainDiagram'] }, supportThemeIcons: true },
      initializationOptions: settings.initializationOptions(folder ? vscode.Uri.joinPath(folder, 'cache').fsPath : undefined,
        attachmentDir(this.context).fsPath),
      errorHandler: {
        error: (_error, _message, count) => ({ action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown }),
        closed: () => {
          this.onClosed(client);
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
      middleware: {
        provideHover: (document, position, token, next) => (settings.hoverEnabled() ? next(document, position, token) : undefined),
        provideCodeLenses: (document, token, next) => (settings.codeLensEnabled() ? next(document, token) : []),
      },
    };
    const client = new LanguageClient('vlcache', 'VLCache', serverOptions, clientOptions);
    this.client = client;
    client.onNotification(StatusNotification.method, (p: StatusParams) => this.statusEmitter.fire(p));
    await client.start();
    this.initializeResult = client.initializeResult as VlcacheInitializeResult;
    this.output.info(`daemon started (pid ${this.pid ?? '?'}, protocol ${this.initializeResult?.protocolVersion})`);
    this.startedAt = Date.now();
    this.setState('running');
    return client;
  }

  /** The connection closed without our asking: restart with backoff and tell the user once. */
  private onClosed(closed: LanguageClient): void {
    // A client stopped earlier (Restart Daemon) may report its close after the next one started: not a crash.
    if (this.stopping || this.client === undefined || closed !== this.client) return;
    // The dead client has stopped itself (DoNotRestart); stopping it again would only log errors.
    this.client = undefined;
    this.ready = undefined;
    this.initializeResult = undefined;
    if (Date.now() - this.startedAt > HEALTHY_AFTER_MS) this.nCrashes = 0;
    const delay = RESTART_DELAYS_MS[this.nCrashes];
    this.nCrashes++;
    if (delay === undefined) {
      this.setState('failed');
      const message = `the daemon stopped ${this.nCrashes} times in a row; it stays stopped until "VLCache: Restart Daemon"`;
      this.output.error(message);
      this.statusEmitter.fire({ kind: 'error', message });
      void vscode.window.showErrorMessage(`VLCache: ${message}.`, 'Show Output', 'Restart Daemon').then((pick) => {
        if (pick === 'Show Output') this.output.show();
        if (pick === 'Restart Daemon') void this.restart();
      });
      return;
    }
    this.output.warn(`the daemon stopped unexpectedly; restarting in ${delay / 1000} s`);
    if (!this.toldUserOfCrash) {
      this.toldUserOfCrash = true;
      void vscode.window.showWarningMessage('VLCache: the daemon stopped unexpectedly and is restarting. The output channel has the details.', 'Show Output')
        .then((pick) => { if (pick) this.output.show(); });
    }
    this.setState('restarting');
    this.restartTimer = setTimeout(() => { this.restartTimer = undefined; void this.start().catch(() => undefined); }, delay);
  }

  private setState(s: DaemonState): void {
    if (s === this.state) return;
    this.state = s;
    this.stateEmitter.fire(s);
  }
}

/**
 * One request, typed by the protocol's RequestType: the compiler checks `params` and the
 * result against the method's declaration in server/src/protocol/. Sent by its method name:
 * the RequestType objects belong to the server's copy of vscode-jsonrpc, whose parameter
 * structure values the client's own copy rejects at run time. The token is passed only
 * when there is one: an explicit `undefined` would be sent as a second parameter.
 */
function send<P, R>(client: LanguageClient, type: RequestType<P, R, void>, params: P, token?: vscode.CancellationToken): Promise<R> {
  const method = type.method;
  if (!token) return client.sendRequest<R>(method, params);
  const reply = client.sendRequest<R>(method, params, token);
  // The client sends $/cancelRequest but keeps waiting for the reply. A live daemon answers
  // at once (the partial answer, or RequestCancelled); a hung one never does: stop waiting
  // after a grace period so Stop always returns.
  let sub: vscode.Disposable | undefined;
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<never>((_, reject) => {
    sub = token.onCancellationRequested(() => {
      timer = setTimeout(() => reject(new ResponseError(ErrorCodesLsp.RequestCancelled, `${method}: cancelled; the daemon did not confirm within ${CANCEL_GRACE_MS / 1000} s`)), CANCEL_GRACE_MS);
    });
  });
  return Promise.race([reply, gaveUp]).finally(() => { sub?.dispose(); clearTimeout(timer); });
}

/** A readable line for an error from the daemon (ResponseError codes from server/src/protocol/errors.ts). */
export function describe(e: unknown): string {
  if (e instanceof ResponseError || (typeof e === 'object' && e !== null && 'code' in e && 'message' in e)) {
    return String((e as { message: string }).message);
  }
  return e instanceof Error ? e.message : String(e);
}

/** The error's vlcache code, when it is a ResponseError from the daemon. */
export function errorCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

export { ErrorCodes };
