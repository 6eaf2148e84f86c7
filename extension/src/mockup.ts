/**
 * "Mockup to Code": asks the model for markup that reproduces a UI mockup and
 * streams it into a new untitled editor (language from `vlcache.mockup.language`).
 * When the answer holds a fenced code block, the editor ends with just its body.
 */
import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { AskResult } from '../../server/src/protocol';
import type { Daemon } from './daemon';
import { cacheBadge } from './badge';
import * as settings from './settings';

const LANGUAGE_NAMES: Record<string, string> = {
  html: 'HTML with inline CSS', typescriptreact: 'a React component in TypeScript (TSX)', javascriptreact: 'a React component (JSX)',
  vue: 'a Vue single-file component', svelte: 'a Svelte component', css: 'HTML and CSS',
};

const FLUSH_MS = 100;

export function mockupQuestion(language: string): string {
  const target = LANGUAGE_NAMES[language] ?? language;
  return `Write ${target} that reproduces this UI mockup: its layout, text, buttons and input fields. Answer with one code block.`;
}

/** The body of the first fenced code block, or the whole text when there is none. */
export function codeFromAnswer(text: string): string {
  const m = /```[^\n]*\n([\s\S]*?)(?:```|$)/.exec(text);
  return (m ? m[1] : text).replace(/\s+$/, '') + '\n';
}

export interface MockupOutcome {
  document: vscode.TextDocument;
  result: AskResult;
}

/** Streams the generated code into a new editor beside the current one. */
export async function mockupToCode(daemon: Daemon, images: vscode.Uri[], token: vscode.CancellationToken): Promise<MockupOutcome> {
  const language = settings.mockupLanguage();
  const document = await vscode.workspace.openTextDocument({ language, content: '' });
  const editor = await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: false });
  // Deltas are batched (one edit per FLUSH_MS) and edits applied one at a time, in order.
  let pending = Promise.resolve(true);
  let buffered = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const text = buffered;
    buffered = '';
    if (!text) return;
    pending = pending.then(() => editor.edit((b) => b.insert(document.lineAt(document.lineCount - 1).range.end, text),
      { undoStopBefore: false, undoStopAfter: false }));
  };
  const append = (text: string) => {
    buffered += text;
    timer ??= setTimeout(flush, FLUSH_MS);
  };
  const req = settings.requestSettings();
  let result: AskResult;
  try {
    result = await daemon.ask({
      images: images.map((u) => u.toString()), question: mockupQuestion(language), maxTokens: req.maxTokens,
      mode: req.mode, ratio: req.ratio,
    }, append, token);
  } finally {
    clearTimeout(timer);
    flush();
    await pending;
  }
  // Replace the streamed answer by its code block, as one undoable edit.
  const code = codeFromAnswer(result.text);
  await editor.edit((b) => b.replace(new vscode.Range(document.positionAt(0), document.positionAt(document.getText().length)), code));
  vscode.window.setStatusBarMessage(`VLCache: ${basename(images[0].path)} → ${language} · ${cacheBadge(result).text}`, 10_000);
  return { document, result };
}
