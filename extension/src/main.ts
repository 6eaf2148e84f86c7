/**
 * VS Code entry point: starts the daemon (a LanguageClient over stdio), wires its
 * status to the status bar, the load-progress notification and the statistics
 * view, registers the commands, and offers a restart when a boot-time setting
 * changes. Hovers and code lenses on image references come from the daemon itself.
 */
import * as vscode from 'vscode';
import { AnswerPanel, setErrorLog, VIEW_TYPE, type SavedAnswerView } from './answer-view';
import { registerCommands } from './commands';
import { registerChatParticipant } from './chat-participant';
import { registerModelProvider } from './chat-model-provider';
import { registerGpuInstallCommand } from './gpu-install';
import { registerDownloadModelCommand } from './download-model';
import { registerWalkthrough } from './walkthrough';
import { Daemon, describe, ErrorCodes } from './daemon';
import { STATS_VIEW_TYPE, StatsPanel } from './stats-view';
import { CacheStatusBar } from './status-bar';
import { needsDaemon } from './lazy-start';
import { inEditorTerms } from './model-check';
import { openModelSetting, registerModelSetup } from './model-setup';
import { restartSettingsChanged } from './settings';
import type { StatusParams } from '../../server/src/protocol';

/** What activate() returns: for other extensions and for the extension tests. */
export interface VlcacheApi {
  version: string;
  daemon: Daemon;
  /** The status-bar item's text and tooltip as shown now. */
  statusBar(): { text: string; tooltip: string };
  /** The answer panel that answered last. */
  lastAnswerPanel(): AnswerPanel | undefined;
  /** The `@vlcache` chat participant's handler (registered with the Chat view where the editor has one). */
  chatHandler: vscode.ChatRequestHandler;
}

let daemon: Daemon | undefined;

export function activate(context: vscode.ExtensionContext): VlcacheApi {
  const version = String(context.extension.packageJSON.version ?? '0.0.0');
  const output = vscode.window.createOutputChannel('VLCache', { log: true });
  setErrorLog(output);
  daemon = new Daemon(context, output);
  const d = daemon;
  const statusBar = new CacheStatusBar();
  const progress = new LoadProgress();
  const chat = registerChatParticipant(context, d);
  for (const registered of [chat.disposable, registerModelProvider(context, d)]) if (registered) context.subscriptions.push(registered);
  context.subscriptions.push(output, d, statusBar, progress,
    d.onState((s) => {
      statusBar.onDaemonState(s);
      // A fresh daemon: show its statistics (model not loaded yet, cache closed) at once.
      if (s === 'running') void d.stats().then((st) => statusBar.onStats(st), () => undefined);
    }),
    d.onStatus((p) => {
      statusBar.onStatus(p);
      progress.onStatus(p);
      if (p.kind === 'stats') StatsPanel.refresh(p.stats);
      if (p.kind === 'error') reportStatusError(p, output);
    }),
    ...registerCommands(context, d),
    registerGpuInstallCommand(d),
    registerDownloadModelCommand(context, d),
    registerWalkthrough(context),
    ...registerModelSetup(output),
    // Answer views come back after a window reload with their conversation (the page saved it).
    vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, state) => { AnswerPanel.revive(context, d, panel, state as SavedAnswerView | undefined); },
    }),
    vscode.window.registerWebviewPanelSerializer(STATS_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel) => { StatsPanel.revive(context, panel, d.stats()); },
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      const changed = restartSettingsChanged(e);
      if (changed.length === 0) return;
      void vscode.window.showInformationMessage(`VLCache: ${changed.join(', ')} take${changed.length === 1 ? 's' : ''} effect when the daemon restarts.`, 'Restart Daemon')
        .then((pick) => { if (pick) void vscode.commands.executeCommand('vlcache.restartDaemon'); });
    }),
  );
  // Lazy start: commands start the daemon themselves (every Daemon request does); documents that may
  // name an image start it for the hovers. No daemon in a window without images.
  const startForHovers = () => {
    if (d.currentState !== 'stopped' || startRequested) return;
    startRequested = true;
    void d.start().catch((e: unknown) => {
      void vscode.window.showErrorMessage(`VLCache: the daemon failed to start: ${describe(e)}`, 'Show Output', 'Restart Daemon').then((pick) => {
        if (pick === 'Show Output') output.show();
        if (pick === 'Restart Daemon') void vscode.commands.executeCommand('vlcache.restartDaemon');
      });
    });
  };
  let startRequested = false;
  const maybeStart = (doc: vscode.TextDocument) => { if (doc.uri.scheme === 'file' && needsDaemon(doc.languageId, doc.getText())) startForHovers(); };
  vscode.workspace.textDocuments.forEach(maybeStart);
  context.subscriptions.push(vscode.workspace.onDidOpenTextDocument(maybeStart),
    vscode.workspace.onDidChangeTextDocument((e) => maybeStart(e.document)));
  return {
    version,
    daemon: d,
    statusBar: () => ({ text: statusBar.text, tooltip: statusBar.tooltipText }),
    lastAnswerPanel: () => AnswerPanel.last,
    chatHandler: chat.handler,
  };
}

/** Stops the daemon with the editor, so no process keeps holding the GPU. */
export async function deactivate(): Promise<void> {
  await daemon?.stop();
  daemon = undefined;
}

/** Errors that no request reports (model load, disk tier): told once per distinct message. */
const reported = new Set<string>();
function reportStatusError(p: Extract<StatusParams, { kind: 'error' }>, output: vscode.LogOutputChannel): void {
  const message = inEditorTerms(p.message);
  output.error(message);
  if (reported.has(message)) return;
  reported.add(message);
  if (p.code === ErrorCodes.ModelLoadFailed) {
    void vscode.window.showErrorMessage(`VLCache could not load the model: ${message}`, 'Select Model…', 'Open Settings', 'Show Output').then((pick) => {
      if (pick === 'Select Model…') void vscode.commands.executeCommand('vlcache.selectModel');
      if (pick === 'Open Settings') openModelSetting();
      if (pick === 'Show Output') output.show();
    });
  }
}

/** The "loading the model" progress notification: opens on the first `loading` status, closes on `ready` or `error`. */
class LoadProgress implements vscode.Disposable {
  /** The open notification's reporter; undefined until VS Code has called the task. */
  private progress?: vscode.Progress<{ message?: string; increment?: number }>;
  private open = false;
  private latest?: { message: string; percentage: number };
  private shownPercentage = 0;
  private done?: () => void;

  onStatus(p: StatusParams): void {
    if (p.kind === 'loading') {
      this.latest = { message: p.message, percentage: p.percentage };
      if (!this.open) this.show();
      else this.apply();
    } else if (p.kind === 'ready' || p.kind === 'error') {
      this.close();
    }
  }

  dispose(): void {
    this.close();
  }

  private show(): void {
    this.open = true;
    this.shownPercentage = 0;
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'VLCache: loading the model' }, (progress) => {
      if (!this.open) return Promise.resolve(); // closed before VS Code ran the task
      this.progress = progress;
      this.apply();
      return new Promise<void>((resolve) => (this.done = resolve));
    });
  }

  private apply(): void {
    if (!this.progress || !this.latest) return;
    const increment = Math.max(0, this.latest.percentage - this.shownPercentage);
    this.shownPercentage += increment;
    this.progress.report({ message: this.latest.message, increment });
  }

  private close(): void {
    this.open = false;
    this.progress = undefined;
    this.done?.();
    this.done = undefined;
  }
}
