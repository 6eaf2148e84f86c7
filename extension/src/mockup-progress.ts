/**
 * Mockup to Code's progress: the code streams into its editor, so the run shows as a status-bar item — a spinner,
 * the file being written and "Stop" — instead of a notification over the editor. Clicking it, or the command
 * **VLCache: Stop Mockup to Code** (in the palette while one runs), cancels every run in progress; the file is kept
 * and marked PARTIAL (mockup.ts).
 */
import * as vscode from 'vscode';

export const STOP_MOCKUP_COMMAND = 'vlcache.stopMockupToCode';
/** A context key: true while a Mockup to Code runs (the Stop command's palette entry and enablement). */
const RUNNING_KEY = 'vlcache.mockupRunning';

const running = new Set<vscode.CancellationTokenSource>();

export function registerStopMockup(): vscode.Disposable {
  return vscode.commands.registerCommand(STOP_MOCKUP_COMMAND, () => {
    const n = running.size;
    for (const cts of running) cts.cancel();
    return n;
  });
}

/** Runs `work` with a token the Stop item and command cancel, showing the item while it runs. */
export async function withMockupProgress<T>(mockupName: string, work: (token: vscode.CancellationToken) => Promise<T>): Promise<T> {
  const cts = new vscode.CancellationTokenSource();
  const item = vscode.window.createStatusBarItem('vlcache.mockupProgress', vscode.StatusBarAlignment.Left, 1000);
  item.name = 'VLCache: Mockup to Code';
  item.text = `$(loading~spin) Mockup to Code: ${mockupName} · $(debug-stop) Stop`;
  item.tooltip = `VLCache is writing code for ${mockupName} into the editor beside it. Click to stop (the file is kept, marked PARTIAL).`;
  item.accessibilityInformation = { label: `VLCache is writing code for ${mockupName}. Press to stop.`, role: 'button' };
  item.command = STOP_MOCKUP_COMMAND;
  running.add(cts);
  void vscode.commands.executeCommand('setContext', RUNNING_KEY, true);
  item.show();
  try {
    return await work(cts.token);
  } finally {
    item.dispose();
    running.delete(cts);
    cts.dispose();
    if (running.size === 0) void vscode.commands.executeCommand('setContext', RUNNING_KEY, false);
  }
}
