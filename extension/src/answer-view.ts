/**
 * The answer view: ONE webview panel for every ask (revealed, never a second tab). It streams
 * each answer as Markdown (rendered here with markdown-it, raw HTML off), shows the thumbnails
 * of each set of images above the questions about them, the timing and cache badge, keeps the
 * conversation so a follow-up question on the same images reuses their cached KV, and has a
 * stop button. Asking about other images appends them and their questions to the same panel;
 * the follow-up box then asks about them.
 *
 * Webview ⇄ extension messages: see {@link ToWebview} and FromAnswerView (answer-messages.ts);
 * the page script is media/webview/answer.js.
 */
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import MarkdownIt from 'markdown-it';
import * as vscode from 'vscode';
import type { AskResult } from '../../server/src/protocol';
import { describe, errorCode, ErrorCodes, type Daemon } from './daemon';
import { cacheBadge, type BadgeTone } from './badge';
import { parseAnswerViewMessage } from './answer-messages';
import { LastTextEditor, runCodeAction } from './code-actions';
import { relativePaths } from './error-text';
import { escapeHtml, formatMs } from './format';
import * as settings from './settings';

const md = new MarkdownIt({ html: false, linkify: true, breaks: false });
/** Streamed text is re-rendered at most this often. */
const RENDER_INTERVAL_MS = 50;

export interface Turn {
  question: string;
  /** The images it was asked about. */
  images: vscode.Uri[];
  answer: string;
  result?: AskResult;
  error?: string;
  state: 'streaming' | 'done' | 'cancelled' | 'failed';
}

type ToWebview =
  | { type: 'init'; images: string[] }
  /** The thumbnails of a new set of images, shown above turn `index` (the first question about them). */
  | { type: 'images'; index: number; images: string[]; thumbs: { src: string; name: string }[] }
  | { type: 'turn'; index: number; question: string; images: string[] }
  | { type: 'answer'; index: number; html: string }
  | { type: 'progress'; index: number; message: string }
  | { type: 'done'; index: number; text: string; badge: string; hit: boolean; tone: BadgeTone; details: string; notes: string[]; state: Turn['state'];
      /** false: a restored turn, not announced to screen readers. */ live?: boolean }
  | { type: 'busy'; busy: boolean };

// The page's messages to the extension: FromAnswerView in answer-messages.ts (parsed there before use).

/**
 * What the page keeps with `vscode.setState` (media/webview/answer.js) and VS Code hands
 * back after a window reload: enough to show the conversation again and go on with it.
 */
export interface SavedAnswerView {
  /** The images the follow-up box asks about. */
  images: string[];
  /** `images`: what the turn was asked about (absent in views saved before the one-panel change: `images` above). */
  turns: { question: string; images?: string[]; text?: string; badge?: string; hit?: boolean; tone?: BadgeTone; details?: string; notes?: string[]; state?: Turn['state'] }[];
}

export class AnswerPanel implements vscode.Disposable {
  /** The one answer panel every ask goes to, while it is open. */
  private static current?: AnswerPanel;
  /** The panel that answered last (tests read its transcript). */
  static last?: AnswerPanel;

  readonly turns: Turn[] = [];
  private running?: vscode.CancellationTokenSource;
  private readonly panel: vscode.WebviewPanel;
  private readonly disposables: vscode.Disposable[] = [];
  /** Where a code block's Insert at Cursor goes (the view has the focus when its button is pressed). */
  private readonly lastEditor = new LastTextEditor();
  private readonly finishedEmitter = new vscode.EventEmitter<Turn>();
  /** Fires when a turn ends (done, cancelled or failed). */
  readonly onDidFinishTurn = this.finishedEmitter.event;

  /**
   * The panel, now about these images: the open one, revealed (the same images: the conversation continues; other
   * images: they and their questions follow the earlier ones), or a new one.
   */
  static forImages(context: vscode.ExtensionContext, daemon: Daemon, images: vscode.Uri[]): AnswerPanel {
    const p = AnswerPanel.current;
    if (p) {
      p.showImages(images);
      p.panel.reveal(undefined, true);
      return p;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, title(images), { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      webviewOptions(context, images));
    return new AnswerPanel(context, daemon, images, panel, []);
  }

  /** A panel VS Code restores after a window reload, with the conversation its page saved. */
  static revive(context: vscode.ExtensionContext, daemon: Daemon, panel: vscode.WebviewPanel, saved: SavedAnswerView | undefined): AnswerPanel {
    const uris = (list: string[] | undefined) => (list ?? []).map((u) => vscode.Uri.parse(u));
    const images = uris(saved?.images);
    const turns = (saved?.turns ?? []).map((t) => ({ ...t, images: t.images ?? saved?.images }));
    panel.webview.options = webviewOptions(context, [...images, ...turns.flatMap((t) => uris(t.images))]);
    const p = new AnswerPanel(context, daemon, images, panel, turns);
    AnswerPanel.last ??= p;
    return p;
  }

  private key: string;

  private constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly daemon: Daemon,
    /** What the next question (the follow-up box) is about. */
    public images: vscode.Uri[],
    panel: vscode.WebviewPanel,
    saved: SavedAnswerView['turns'],
  ) {
    this.key = keyOf(images);
    AnswerPanel.current ??= this;
    this.panel = panel;
    this.panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'icon.png');
    this.disposables.push(
      this.panel.onDidDispose(() => this.dispose()),
      this.panel.webview.onDidReceiveMessage((m: unknown) => this.onMessage(m)),
      this.lastEditor,
    );
    // A restored conversation: shown again as it was; its finished turns are the history of the next question.
    for (const t of saved) {
      const turn: Turn = { question: t.question, images: (t.images ?? []).map((u) => vscode.Uri.parse(u)), answer: t.text ?? '',
        state: t.state === 'streaming' || !t.state ? 'cancelled' : t.state };
      this.turns.push(turn);
      this.savedFooters.set(turn, t);
    }
    this.render();
  }

  /** Footers of restored turns (they have no AskResult to build one from). */
  private readonly savedFooters = new Map<Turn, SavedAnswerView['turns'][number]>();

  /** Writes the page and replays the conversation into it (a new page, or new local resource roots). */
  private render(): void {
    // A new page: what is posted until its script says `ready` waits (a restored view's page loads late, and a
    // message posted before its listener exists is dropped: the conversation would come back empty).
    this.unsent = [];
    this.panel.webview.html = this.html();
    this.post({ type: 'init', images: this.images.map((u) => u.toString()) });
    this.turns.forEach((turn, index) => {
      this.postTurn(index, turn);
      this.post({ type: 'answer', index, html: md.render(turn.answer) });
      const t = this.savedFooters.get(turn);
      if (turn.state === 'streaming') return; // its ask posts the rest
      this.post(t ? { type: 'done', index, text: turn.answer, badge: t.badge ?? turn.state, hit: t.hit ?? false, tone: t.tone ?? (t.hit ? 'hit' : 'miss'),
        details: t.details ?? '', notes: t.notes ?? [], state: turn.state, live: false } : { ...this.doneMessage(index, turn), live: false });
    });
  }

  /** The question of turn `index`, after the thumbnails of its images when they differ from the turn before's. */
  private postTurn(index: number, turn: Turn): void {
    const images = turn.images.map((u) => u.toString());
    const before = this.turns[index - 1];
    if (!before || keyOf(before.images) !== keyOf(turn.images)) {
      const w = this.panel.webview;
      this.post({ type: 'images', index, images, thumbs: turn.images.map((u) => ({ src: w.asWebviewUri(u).toString(), name: basename(u.path) })) });
    }
    this.post({ type: 'turn', index, question: turn.question, images });
  }

  /** Makes `images` what the next question is about; the page is written again when their folders were not readable. */
  private showImages(images: vscode.Uri[]): void {
    if (keyOf(images) === this.key) return;
    this.images = images;
    this.key = keyOf(images);
    this.panel.title = title(images);
    const roots = this.panel.webview.options.localResourceRoots ?? [];
    const readable = (u: vscode.Uri) => roots.some((r) => u.toString().startsWith(`${r.toString().replace(/\/$/, '')}/`));
    if (!images.every(readable)) {
      this.panel.webview.options = webviewOptions(this.context, [...images, ...this.turns.flatMap((t) => t.images)]);
      this.render();
    }
  }

  /** Asks `question` about the panel's images with the conversation so far; resolves when the turn ends. */
  async ask(question: string): Promise<Turn> {
    if (this.running) this.running.cancel();
    AnswerPanel.last = this;
    // The conversation about these images: the turns since they were last changed (other images are not in the prompt).
    let start = this.turns.length;
    while (start > 0 && keyOf(this.turns[start - 1].images) === this.key) start--;
    const history = this.turns.slice(start).filter((t) => t.state === 'done').flatMap((t) => [
      { role: 'user' as const, content: t.question },
      { role: 'assistant' as const, content: t.answer },
    ]);
    const images = this.images;
    const turn: Turn = { question, images, answer: '', state: 'streaming' };
    const index = this.turns.push(turn) - 1;
    this.postTurn(index, turn);
    this.post({ type: 'busy', busy: true });
    const cts = new vscode.CancellationTokenSource();
    this.running = cts;
    let timer: NodeJS.Timeout | undefined;
    const flush = () => { timer = undefined; this.post({ type: 'answer', index, html: md.render(turn.answer) }); };
    const req = settings.requestSettings();
    try {
      turn.result = await this.daemon.ask({
        images: images.map((u) => u.toString()), question, history, maxTokens: req.maxTokens, mode: req.mode, ratio: req.ratio,
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
    if (AnswerPanel.current === this) AnswerPanel.current = undefined;
    if (AnswerPanel.last === this) AnswerPanel.last = undefined;
    this.finishedEmitter.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }

  private onMessage(raw: unknown): void {
    const m = parseAnswerViewMessage(raw);
    if (!m) return; // not one of the page's messages: ignored
    if (m.type === 'ready') this.onPageReady();
    else if (m.type === 'stop') this.stop();
    else if (m.type === 'ask') void this.ask(m.question);
    else void runCodeAction(m, this.lastEditor).catch((e) => void showAskError(e));
  }

  /** Messages for the current page, in order, until it says `ready`; undefined once it has (they go at once). */
  private unsent: ToWebview[] | undefined = [];

  private post(m: ToWebview): void {
    if (this.unsent) this.unsent.push(m);
    else void this.panel.webview.postMessage(m);
  }

  private onPageReady(): void {
    const queued = this.unsent ?? [];
    this.unsent = undefined;
    for (const m of queued) void this.panel.webview.postMessage(m);
  }

  private doneMessage(index: number, turn: Turn): Extract<ToWebview, { type: 'done' }> {
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
    return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${w.cspSource} data:; style-src ${w.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${media('answer.css')}"><title>${escapeHtml(title(this.images))}</title></head>
<body>
<main id="turns"></main>
<p id="announce" class="sr-only" role="status" aria-live="polite"></p>
<form id="ask"><textarea id="question" rows="2" placeholder="Ask a follow-up question about the images above…" aria-label="Question"></textarea>
<div class="buttons"><button type="submit" id="send">Ask</button><button type="button" id="stop" class="secondary" disabled>Stop</button></div></form>
<script nonce="${nonce}" src="${media('answer.js')}"></script>
</body></html>`;
  }
}

export const VIEW_TYPE = 'vlcache.answer';

function keyOf(images: vscode.Uri[]): string {
  return images.map((u) => u.toString()).sort().join('\n');
}

/**
 * Scripts on; local files: the extension's media, the workspace folders (any image asked about later shows without
 * writing the page again) and the images' own folders.
 */
function webviewOptions(context: vscode.ExtensionContext, images: vscode.Uri[]): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri);
  const roots = [vscode.Uri.joinPath(context.extensionUri, 'media'), ...folders, ...images.map((u) => vscode.Uri.joinPath(u, '..'))];
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
