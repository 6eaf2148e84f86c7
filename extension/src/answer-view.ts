/**
 * The answer view: one webview panel per set of images. It streams each answer as
 * Markdown (rendered here with markdown-it, raw HTML off), shows the thumbnails,
 * the timing and cache badge, keeps the conversation so a follow-up question on the
 * same images reuses their cached KV, and has a stop button.
 *
 * Webview ⇄ extension messages: see {@link ToWebview} and {@link FromWebview};
 * the page script is media/webview/answer.js.
 */
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import MarkdownIt from 'markdown-it';
import * as vscode from 'vscode';
import type { AskResult } from '../../server/src/protocol';
import { describe, errorCode, ErrorCodes, type Daemon } from './daemon';
import { cacheBadge, type BadgeTone } from './badge';
import { relativePaths } from './error-text';
import { escapeHtml, formatMs } from './format';
import * as settings from './settings';

const md = new MarkdownIt({ html: false, linkify: true, breaks: false });
/** Streamed text is re-rendered at most this often. */
const RENDER_INTERVAL_MS = 50;

export interface Turn {
  question: string;
  answer: string;
  result?: AskResult;
  error?: string;
  state: 'streaming' | 'done' | 'cancelled' | 'failed';
}

type ToWebview =
  | { type: 'init'; images: string[] }
  | { type: 'turn'; index: number; question: string }
  | { type: 'answer'; index: number; html: string }
  | { type: 'progress'; index: number; message: string }
  | { type: 'done'; index: number; text: string; badge: string; hit: boolean; tone: BadgeTone; details: string; notes: string[]; state: Turn['state'];
      /** false: a restored turn, not announced to screen readers. */ live?: boolean }
  | { type: 'busy'; busy: boolean };

type FromWebview = { type: 'ask'; question: string } | { type: 'stop' };

/**
 * What the page keeps with `vscode.setState` (media/webview/answer.js) and VS Code hands
 * back after a window reload: enough to show the conversation again and go on with it.
 */
export interface SavedAnswerView {
  images: string[];
  turns: { question: string; text?: string; badge?: string; hit?: boolean; tone?: BadgeTone; details?: string; notes?: string[]; state?: Turn['state'] }[];
}

export class AnswerPanel implements vscode.Disposable {
  private static readonly panels = new Map<string, AnswerPanel>();
  /** The panel that answered last (tests read its transcript). */
  static last?: AnswerPanel;

  readonly turns: Turn[] = [];
  private running?: vscode.CancellationTokenSource;
  private readonly panel: vscode.WebviewPanel;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly finishedEmitter = new vscode.EventEmitter<Turn>();
  /** Fires when a turn ends (done, cancelled or failed). */
  readonly onDidFinishTurn = this.finishedEmitter.event;

  /** The panel for these images: the existing one (the conversation continues) or a new one. */
  static forImages(context: vscode.ExtensionContext, daemon: Daemon, images: vscode.Uri[]): AnswerPanel {
    const p = AnswerPanel.panels.get(keyOf(images));
    if (p) {
      p.panel.reveal(undefined, true);
      return p;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, title(images), { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      webviewOptions(context, images));
    return new AnswerPanel(context, daemon, images, panel, []);
  }

  /** A panel VS Code restores after a window reload, with the conversation its page saved. */
  static revive(context: vscode.ExtensionContext, daemon: Daemon, panel: vscode.WebviewPanel, saved: SavedAnswerView | undefined): AnswerPanel {
    const images = (saved?.images ?? []).map((u) => vscode.Uri.parse(u));
    panel.webview.options = webviewOptions(context, images);
    const p = new AnswerPanel(context, daemon, images, panel, saved?.turns ?? []);
    AnswerPanel.last ??= p;
    return p;
  }

  private readonly key: string;

  private constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly daemon: Daemon,
    readonly images: vscode.Uri[],
    panel: vscode.WebviewPanel,
    saved: SavedAnswerView['turns'],
  ) {
    this.key = keyOf(images);
    AnswerPanel.panels.set(this.key, this);
    this.panel = panel;
    this.panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'icon.png');
    this.panel.webview.html = this.html();
    this.disposables.push(
      this.panel.onDidDispose(() => this.dispose()),
      this.panel.webview.onDidReceiveMessage((m: FromWebview) => this.onMessage(m)),
    );
    this.post({ type: 'init', images: images.map((u) => u.toString()) });
    // A restored conversation: shown again as it was; its finished turns are the history of the next question.
    for (const t of saved) {
      const turn: Turn = { question: t.question, answer: t.text ?? '', state: t.state === 'streaming' || !t.state ? 'cancelled' : t.state };
      const index = this.turns.push(turn) - 1;
      this.post({ type: 'turn', index, question: turn.question });
      this.post({ type: 'answer', index, html: md.render(turn.answer) });
      this.post({ type: 'done', index, text: turn.answer, badge: t.badge ?? turn.state, hit: t.hit ?? false, tone: t.tone ?? (t.hit ? 'hit' : 'miss'), details: t.details ?? '',
        notes: t.notes ?? [], state: turn.state, live: false });
    }
  }

  /** Asks `question` about the panel's images with the conversation so far; resolves when the turn ends. */
  async ask(question: string): Promise<Turn> {
    if (this.running) this.running.cancel();
    AnswerPanel.last = this;
    const history = this.turns.filter((t) => t.state === 'done').flatMap((t) => [
      { role: 'user' as const, content: t.question },
      { role: 'assistant' as const, content: t.answer },
    ]);
    const turn: Turn = { question, answer: '', state: 'streaming' };
    const index = this.turns.push(turn) - 1;
    this.post({ type: 'turn', index, question });
    this.post({ type: 'busy', busy: true });
    const cts = new vscode.CancellationTokenSource();
    this.running = cts;
    let timer: NodeJS.Timeout | undefined;
    const flush = () => { timer = undefined; this.post({ type: 'answer', index, html: md.render(turn.answer) }); };
    const req = settings.requestSettings();
    try {
      turn.result = await this.daemon.ask({
        images: this.images.map((u) => u.toString()), question, history, maxTokens: req.maxTokens, mode: req.mode, ratio: req.ratio,
      }, (delta) => {
        turn.answer += delta;
        timer ??= setTimeout(flush, RENDER_INTERVAL_MS);
      }, cts.token, (message) => this.post({ type: 'progress', index, message }));
      turn.answer = turn.result.text;
      turn.state = turn.result.stopReason === 'cancelled' ? 'cancelled' : 'done';
    } catch (e) {
      turn.state = cts.token.isCancellationRequested ? 'cancelled' : 'failed';
      turn.error = describe(e);
      if (turn.state === 'failed') void showAskError(e);
    } finally {
      clearTimeout(timer);
      if (this.running === cts) this.running = undefined;
      cts.dispose();
    }
    flush();
    this.post(this.doneMessage(index, turn));
    this.post({ type: 'busy', busy: false });
    this.finishedEmitter.fire(turn);
    return turn;
  }

  /** Stops the answer being generated (the partial text stays). */
  stop(): void {
    this.running?.cancel();
  }

  dispose(): void {
    this.running?.cancel();
    AnswerPanel.panels.delete(this.key);
    if (AnswerPanel.last === this) AnswerPanel.last = undefined;
    this.finishedEmitter.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }

  private onMessage(m: FromWebview): void {
    if (m.type === 'stop') this.stop();
    else if (m.type === 'ask' && m.question.trim()) void this.ask(m.question.trim());
  }

  private post(m: ToWebview): void {
    void this.panel.webview.postMessage(m);
  }

  private doneMessage(index: number, turn: Turn): ToWebview {
    const r = turn.result;
    const notes: string[] = [];
    if (turn.state === 'cancelled') notes.push('Stopped.');
    if (turn.error && turn.state === 'failed') notes.push(`Failed: ${turn.error}`);
    for (const im of r?.images ?? []) {
      // width × height are the file's own; the model saw it smaller (nTokens image tokens).
      if (im.downscaled) notes.push(`${basename(vscode.Uri.parse(im.image).path)} (${im.width}×${im.height}) was downscaled to ${im.nTokens} image tokens to fit vlcache.maxImagePixels.`);
    }
    if (!r) return { type: 'done', index, text: turn.answer, badge: turn.state, hit: false, tone: 'miss', details: '', notes, state: turn.state };
    const t = r.timings;
    const c = r.cache;
    const details = [
      `TTFT ${formatMs(t.ttftMs)} (queue ${formatMs(t.queueMs)}, preprocess ${formatMs(t.preprocessMs)}, vision ${formatMs(t.visionMs)}, prefill ${formatMs(t.prefillMs)})`,
      `${r.nGeneratedTokens} tokens at ${t.decodeTokensPerS.toFixed(1)} tok/s on ${r.device}`,
      `mode ${c.mode}: computed ${c.tokensComputed} of ${c.tokensTotal} prompt tokens (${(c.recomputeFraction * 100).toFixed(1)}%)`,
      `encoder ${c.encoderHits} hit / ${c.encoderMisses} miss · image KV ${c.kvHits} hit / ${c.kvMisses} miss · prefix ${c.prefixTokensReused} tokens${c.tier.length ? ` · from ${c.tier.join(', ')}` : ''}`,
    ].join('\n');
    const badge = cacheBadge(r);
    return { type: 'done', index, text: turn.answer, badge: badge.text, hit: badge.tone === 'hit', tone: badge.tone, details, notes, state: turn.state };
  }

  private html(): string {
    const w = this.panel.webview;
    const nonce = randomBytes(16).toString('base64');
    const media = (f: string) => w.asWebviewUri(vscode.Uri.joinPath(this.context.extensionUri, 'media', 'webview', f));
    const thumbs = this.images.map((u) => `<figure><img src="${w.asWebviewUri(u)}" alt=""><figcaption>${escapeHtml(basename(u.path))}</figcaption></figure>`).join('');
    return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${w.cspSource} data:; style-src ${w.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${media('answer.css')}"><title>${escapeHtml(title(this.images))}</title></head>
<body>
<header class="images">${thumbs}</header>
<main id="turns"></main>
<p id="announce" class="sr-only" role="status" aria-live="polite"></p>
<form id="ask"><textarea id="question" rows="2" placeholder="Ask a follow-up question about ${this.images.length > 1 ? 'these images' : 'this image'}…" aria-label="Question"></textarea>
<div class="buttons"><button type="submit" id="send">Ask</button><button type="button" id="stop" class="secondary" disabled>Stop</button></div></form>
<script nonce="${nonce}" src="${media('answer.js')}"></script>
</body></html>`;
  }
}

export const VIEW_TYPE = 'vlcache.answer';

function keyOf(images: vscode.Uri[]): string {
  return images.map((u) => u.toString()).sort().join('\n');
}

/** Scripts on; local files: the extension's media and the images' folders. */
function webviewOptions(context: vscode.ExtensionContext, images: vscode.Uri[]): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  const roots = [vscode.Uri.joinPath(context.extensionUri, 'media'), ...images.map((u) => vscode.Uri.joinPath(u, '..'))];
  return { enableScripts: true, retainContextWhenHidden: true, localResourceRoots: roots };
}

function title(images: vscode.Uri[]): string {
  const names = images.map((u) => basename(u.path));
  return `VLCache: ${names.length > 2 ? `${names.slice(0, 2).join(', ')} +${names.length - 2}` : names.join(', ')}`;
}

let errorLog: vscode.LogOutputChannel | undefined;
/** Where showAskError logs (main.ts sets the VLCache output channel). */
export function setErrorLog(log: vscode.LogOutputChannel): void {
  errorLog = log;
}

/** A failed ask in words for people (workspace-relative paths), logged to the output channel with its cause. */
export function logAskError(e: unknown): string {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
  const message = relativePaths(describe(e), folders, (u) => vscode.workspace.asRelativePath(vscode.Uri.parse(u)));
  errorLog?.error(`${message}${e instanceof Error && e.cause ? ` (cause: ${describe(e.cause)})` : ''}`);
  return message;
}

/** A failed ask, told the user with the action that fixes it. */
export async function showAskError(e: unknown): Promise<void> {
  // Every error is in the output channel, with its cause, before the notification offers "Show Output".
  const message = logAskError(e);
  switch (errorCode(e)) {
    case ErrorCodes.ModelLoadFailed:
      // The daemon's `error` status has told the user already (main.ts, with Open Settings), once per message.
      return;
    case ErrorCodes.PathOutsideWorkspace:
      await vscode.window.showErrorMessage(`VLCache only reads images inside the workspace: ${message}`);
      return;
    default: {
      const pick = await vscode.window.showErrorMessage(`VLCache: ${message}`, 'Show Output');
      if (pick === 'Show Output') await vscode.commands.executeCommand('vlcache.showOutput');
    }
  }
}
