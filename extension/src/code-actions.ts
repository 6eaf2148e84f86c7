/**
 * The actions on an answer's code blocks (answer view): Copy to the clipboard, Insert at Cursor into the last active
 * text editor (replacing its selections), New File (an untitled editor in the block's language). The message was
 * checked by parseAnswerViewMessage (answer-messages.ts) before it gets here.
 */
import * as vscode from 'vscode';
import { languageIdOf, type FromAnswerView } from './answer-messages';

/**
 * Remembers the text editor the user was in last, with its selections: when a button in the answer view is pressed
 * the view has the focus, so `activeTextEditor` is undefined then, and when the view shares the editor's group the
 * editor is not even visible (VS Code has disposed its TextEditor; the document and selections are what last).
 */
export class LastTextEditor implements vscode.Disposable {
  private last?: { document: vscode.TextDocument; selections: readonly vscode.Selection[]; viewColumn?: vscode.ViewColumn };
  private readonly subscriptions = [
    vscode.window.onDidChangeActiveTextEditor((e) => this.remember(e)),
    vscode.window.onDidChangeTextEditorSelection((e) => { if (e.textEditor === vscode.window.activeTextEditor) this.remember(e.textEditor); }),
  ];

  constructor() {
    this.remember(vscode.window.activeTextEditor);
  }

  private remember(e: vscode.TextEditor | undefined): void {
    if (e && e.document.uri.scheme !== 'output') this.last = { document: e.document, selections: e.selections, viewColumn: e.viewColumn };
  }

  /** Its column (New File opens there), while its document is open. */
  get viewColumn(): vscode.ViewColumn | undefined {
    return this.last && !this.last.document.isClosed ? this.last.viewColumn : undefined;
  }

  /**
   * The last active text editor: shown where it is, or brought back in its column with its selections when the
   * view hides it; undefined when there was none or its document is closed.
   */
  async editor(): Promise<vscode.TextEditor | undefined> {
    const last = this.last;
    if (!last || last.document.isClosed) return undefined;
    const shown = vscode.window.visibleTextEditors.find((e) => e.document === last.document && e.viewColumn === last.viewColumn)
      ?? vscode.window.visibleTextEditors.find((e) => e.document === last.document);
    if (shown) return shown;
    const editor = await vscode.window.showTextDocument(last.document, { viewColumn: last.viewColumn, preview: false });
    editor.selections = [...last.selections];
    return editor;
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }
}

export async function runCodeAction(m: Extract<FromAnswerView, { type: 'code' }>, target: LastTextEditor): Promise<void> {
  switch (m.action) {
    case 'copy':
      await vscode.env.clipboard.writeText(m.code);
      vscode.window.setStatusBarMessage('VLCache: code copied to the clipboard', 3000);
      return;
    case 'insert': {
      const editor = await target.editor();
      if (!editor) {
        await vscode.window.showInformationMessage('VLCache: open a text editor to insert the code into (or use New File).');
        return;
      }
      // Each selection is replaced (an empty one is the cursor); the whole insert is one undo step.
      const ok = await editor.edit((b) => { for (const s of editor.selections) b.replace(s, m.code); });
      if (!ok) await vscode.window.showWarningMessage(`VLCache: could not insert into ${vscode.workspace.asRelativePath(editor.document.uri)}.`);
      return;
    }
    case 'newFile': {
      const language = languageIdOf(m.language, await vscode.languages.getLanguages());
      const document = await vscode.workspace.openTextDocument({ language, content: m.code });
      // In the editors' column (the answer view is usually beside them).
      await vscode.window.showTextDocument(document, { viewColumn: target.viewColumn ?? vscode.ViewColumn.One, preview: false });
      return;
    }
  }
}
