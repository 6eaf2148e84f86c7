/**
 * VS Code entry point. For now it activates and reports the version; the
 * language client, commands, hovers and status bar arrive with the editor issue.
 */
import * as vscode from 'vscode';

export function activate(context: vscode.ExtensionContext): { version: string } {
  const version = String(context.extension.packageJSON.version ?? '0.0.0');
  context.subscriptions.push(
    vscode.commands.registerCommand('vlcache.showVersion', () => {
      void vscode.window.showInformationMessage(`VLCache ${version}`);
    }),
  );
  return { version };
}

export function deactivate(): void {}
