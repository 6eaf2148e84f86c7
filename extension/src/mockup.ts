/**
 * "Mockup to Code": asks the model for markup that reproduces a UI mockup and streams it into a new file next to
 * the mockup (`login.png` → `login.html`, `.tsx`, `.jsx`, `.vue` or `.svelte` per `vlcache.mockup.language`, else
 * the workspace's framework; never over an existing file: `login-1.html`…), whose first line names the mockup. At
 * the end the file holds just the code block's body and is saved; beside it, the rendered page (HTML, in a webview without scripts) or the mockup
 * image (component languages). Stopped part-way (cancelled or failed), the file is kept and saved with a first
 * line that says PARTIAL.
 */
import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { AskResult } from '../../server/src/protocol';
import type { Daemon } from './daemon';
import { cacheBadge } from './badge';
import { frameworkLanguage, mockupFileExtension, mockupFileLanguage, mockupFileName, mockupHeader, previewHtml } from './mockup-file';
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
  /** The saved file next to the mockup. */
  document: vscode.TextDocument;
  result: AskResult;
  /** What is shown beside the code: the rendered page (HTML) or the mockup itself (component languages). */
  preview: { kind: 'page'; panel: vscode.WebviewPanel } | { kind: 'image'; uri: vscode.Uri };
}

/** Streams the generated code into a new file next to the (first) mockup, saves it and shows its preview. */
export async function mockupToCode(daemon: Daemon, images: vscode.Uri[], token: vscode.CancellationToken): Promise<MockupOutcome> {
  const mockup = images[0];
  const language = await mockupLanguage(mockup);
  const mockupName = basename(mockup.path);
  const document = await createMockupFile(mockup, language);
  const editor = await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: false });
  // Deltas are batched (one edit per FLUSH_MS) and edits applied one at a time, in order, after the header line.
  let pending = editor.edit((b) => b.insert(new vscode.Position(0, 0), mockupHeader(language, mockupName, 'writing')));
  let streamed = '';
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
    streamed += text;
    buffered += text;
    timer ??= setTimeout(flush, FLUSH_MS);
  };
  const req = settings.requestSettings();
  let result: AskResult | undefined;
  try {
    result = await daemon.ask({
      images: images.map((u) => u.toString()), question: mockupQuestion(language), maxTokens: req.maxTokens,
      mode: req.mode, ratio: req.ratio,
    }, append, token);
  } finally {
    clearTimeout(timer);
    flush();
    await pending;
    // Done: the header and the code block's body, as one undoable edit. Stopped (an error or cancelled): the same
    // with a header that says PARTIAL. Saved either way, so the file on disk is what the editor shows.
    const complete = result !== undefined && result.stopReason !== 'cancelled';
    const text = mockupHeader(language, mockupName, complete ? 'done' : 'partial') + codeFromAnswer(result?.text ?? streamed);
    await editor.edit((b) => b.replace(new vscode.Range(document.positionAt(0), document.positionAt(document.getText().length)), text));
    await document.save();
  }
  const preview = await showPreview(document, mockup, language);
  vscode.window.setStatusBarMessage(`VLCache: ${mockupName} → ${basename(document.uri.path)} · ${cacheBadge(result).text}`, 10_000);
  return { document, result, preview };
}

/**
 * `vlcache.mockup.language` where the user set it (any scope), else the framework named by the package.json at the
 * root of the mockup's workspace folder (React, Vue, Svelte), else the setting's default (`html`).
 */
async function mockupLanguage(mockup: vscode.Uri): Promise<string> {
  const set = vscode.workspace.getConfiguration('vlcache', mockup).inspect<string>('mockup.language');
  const chosen = set?.workspaceFolderValue ?? set?.workspaceValue ?? set?.globalValue;
  if (chosen) return chosen;
  const folder = vscode.workspace.getWorkspaceFolder(mockup)?.uri;
  if (!folder) return settings.mockupLanguage();
  const read = (name: string) => Promise.resolve(vscode.workspace.fs.readFile(vscode.Uri.joinPath(folder, name))).then((b) => new TextDecoder().decode(b), () => undefined);
  const [pkg, tsconfig] = await Promise.all([read('package.json'), read('tsconfig.json')]);
  let parsed: unknown;
  try { parsed = pkg ? JSON.parse(pkg) : undefined; } catch { parsed = undefined; }
  return frameworkLanguage(parsed, tsconfig !== undefined) ?? settings.mockupLanguage();
}

/** Creates the empty file for `mockup`'s code beside it (a free name: never over an existing file) and opens it. */
async function createMockupFile(mockup: vscode.Uri, language: string): Promise<vscode.TextDocument> {
  const folder = vscode.Uri.joinPath(mockup, '..');
  const exists = (name: string) => Promise.resolve(vscode.workspace.fs.stat(vscode.Uri.joinPath(folder, name))).then(() => true, () => false);
  // createFile without overwrite fails when the name was taken since it was checked: then the next free name.
  for (let attempt = 0; attempt < 5; attempt++) {
    const uri = vscode.Uri.joinPath(folder, await mockupFileName(basename(mockup.path), language, exists));
    const edit = new vscode.WorkspaceEdit();
    edit.createFile(uri, { overwrite: false, ignoreIfExists: false });
    if (!(await vscode.workspace.applyEdit(edit))) continue;
    const document = await vscode.workspace.openTextDocument(uri);
    // `.txt` (a language without an extension of its own here) still opens in that language.
    const fileLanguage = mockupFileLanguage(language);
    if (document.languageId !== fileLanguage && mockupFileExtension(language) === '.txt'
      && (await vscode.languages.getLanguages()).includes(fileLanguage)) return vscode.languages.setTextDocumentLanguage(document, fileLanguage);
    return document;
  }
  throw new Error(`could not create a file for the code beside ${vscode.workspace.asRelativePath(mockup)}`);
}

/** The one preview panel of generated HTML (reused by the next Mockup to Code). */
let pagePreview: vscode.WebviewPanel | undefined;

/**
 * Beside the code: for HTML the page as a browser draws it, in a webview with scripts off and a CSP that allows
 * only inline styles and images from the mockup's folder (nothing is fetched from the network); for component
 * languages the mockup image (VS Code's image preview), to compare by eye.
 */
async function showPreview(document: vscode.TextDocument, mockup: vscode.Uri, language: string): Promise<MockupOutcome['preview']> {
  if (mockupFileLanguage(language) !== 'html') {
    await vscode.commands.executeCommand('vscode.open', mockup, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true, preview: false });
    return { kind: 'image', uri: mockup };
  }
  const folder = vscode.Uri.joinPath(document.uri, '..');
  const options = { enableScripts: false, enableForms: false, localResourceRoots: [folder] };
  const title = `Preview: ${basename(document.uri.path)}`;
  if (pagePreview) {
    pagePreview.webview.options = options;
    pagePreview.title = title;
    pagePreview.reveal(vscode.ViewColumn.Beside, true);
  } else {
    pagePreview = vscode.window.createWebviewPanel('vlcache.mockupPreview', title, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, options);
    pagePreview.onDidDispose(() => { pagePreview = undefined; });
  }
  pagePreview.webview.html = previewHtml(document.getText(), pagePreview.webview.asWebviewUri(folder).toString(), pagePreview.webview.cspSource);
  return { kind: 'page', panel: pagePreview };
}
