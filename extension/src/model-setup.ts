/**
 * Model set-up: "VLCache: Select Model…" (a folder picker; the folder is checked at once and the
 * exact problem shown; a good one is remembered per machine in `vlcache.modelPath`), and the same
 * check the moment the setting is changed by hand. Messages name the setting, not the CLI's flag.
 */
import * as vscode from 'vscode';
import { MODEL_SETTING, modelFolderProblem } from './model-check';
import * as settings from './settings';

/** Opens the settings UI on the model setting; in a remote window, the remote machine's settings (it is machine-scoped). */
export function openModelSetting(): void {
  const command = vscode.env.remoteName ? 'workbench.action.openRemoteSettings' : 'workbench.action.openSettings';
  void vscode.commands.executeCommand(command, MODEL_SETTING);
}

export function registerModelSetup(output: vscode.LogOutputChannel): vscode.Disposable[] {
  const report = (dir: string, problem: string) => {
    output.error(`${MODEL_SETTING} = ${dir}: ${problem}`);
    void vscode.window.showErrorMessage(`VLCache: ${MODEL_SETTING} is not usable: ${problem}.`, 'Select Model…', 'Open Settings').then((pick) => {
      if (pick === 'Select Model…') void vscode.commands.executeCommand('vlcache.selectModel');
      if (pick === 'Open Settings') openModelSetting();
    });
  };
  return [
    vscode.commands.registerCommand('vlcache.selectModel', async (folder?: vscode.Uri): Promise<{ path?: string; problem?: string }> => {
      const picked = folder ?? (await vscode.window.showOpenDialog({
        canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Use This Model',
        title: 'Folder of a Qwen2-VL / Qwen2.5-VL checkpoint (config.json, *.safetensors, tokenizer.json)',
      }))?.[0];
      if (!picked) return {};
      const problem = modelFolderProblem(picked.fsPath);
      if (problem) {
        report(picked.fsPath, problem);
        return { path: picked.fsPath, problem };
      }
      // Global: the user settings of the machine the extension runs on (the setting is machine-overridable).
      await vscode.workspace.getConfiguration('vlcache').update('modelPath', picked.fsPath, vscode.ConfigurationTarget.Global);
      output.info(`${MODEL_SETTING} set to ${picked.fsPath}`);
      return { path: picked.fsPath };
    }),
    // A path typed into the settings is checked when it is set, not at the first question.
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(MODEL_SETTING)) return;
      const dir = settings.modelPath();
      const problem = dir && modelFolderProblem(dir);
      if (dir && problem) report(dir, problem);
    }),
  ];
}
