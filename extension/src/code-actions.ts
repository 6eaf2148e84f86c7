/**
 * The actions on an answer's code blocks (answer view): Copy to the clipboard, Insert at Cursor into the last active
 * text editor (replacing its selections), New File (an untitled editor in the block's language). The message was
 * checked by parseAnswerViewMessage (answer-messages.ts) before it gets here.
 */
import * as vscode from 'vscode';
import { languageIdOf, type FromAnswerView } from './answer-messages';

/**
 * Remembers the text editor the user was in last: when a button in the answer view is pressed the view has the
 * focus, so `activeTextEditor` is undefined then.
 */
export class LastTextEditor implements vscode.Disposable {
  private editor = vscode.window.activeTextEditor;
  private readonly subscription = vscode.window.onDidChangeActiveTextEditor((e) => { if (e) this.editor = e; });

  /** The last active text editor while its document is open and visible, else the first visible one. */
  get(): vscode.TextEditor | undefined {
    const visible = vscode.window.visibleTextEditors.filter((e) => e.document.uri.scheme !== 'output');
    const last = this.editor;
    if (last && !last.document.isClosed) {
      // The same document shown again is a new TextEditor object: match by document and column.
      return visible.find((e) => e === last) ?? visible.find((e) => e.document === last.document && e.viewColumn === last.viewColumn)
        ?? visible.find((e) => e.document === last.document) ?? visible[0];
    }
    return visible[0];
  }

  dispose(): void {
    this.subscription.dispose();
  }
}

export async function runCodeAction(m: Extract<FromAnswerView, { type: 'code' }>, target: LastTextEditor): Promise<void> {
  switch (m.action) {
    case 'copy':
      await vscode.env.clipboard.writeText(m.code);
      vscode.window.setStatusBarMessage('VLCache: code copied to the clipboard', 3000);
      return;
    case 'insert': {
      const editor = target.get();
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
      await vscode.window.showTextDocument(document, { viewColumn: target.get()?.viewColumn ?? vscode.ViewColumn.One, preview: false });
      return;
    }
  }
}
