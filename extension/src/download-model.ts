/**
 * "VLCache: Download Model…": a quick pick of the supported checkpoints (or any hub id), a
 * destination folder (default ~/models), then the daemon fetches it from the Hugging Face hub
 * (`vlcache/downloadModel`: resumable, checksummed) while a cancellable notification shows
 * its progress. At the end `vlcache.modelPath` is set (user settings of this machine) and a
 * restart of the daemon is offered so the model is used. A gated model asks for a token,
 * kept in VS Code's secret storage and sent to the hub only. The hub is
 * `vlcache.model.hubEndpoint` (a mirror), else the daemon's HF_ENDPOINT, else huggingface.co.
 *
 * Public API: `executeCommand('vlcache.downloadModel', {repo, dest, revision?, quiet?})` asks
 * nothing and resolves with the result (undefined when cancelled). A failure is shown (with
 * Retry) and, to a caller that passed a repo, also rejects with the same message.
 */
import { randomUUID } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { WorkDoneProgress } from 'vscode-languageclient/node';
import { describe, type Daemon } from './daemon';
import { MODEL_SETTING } from './model-check';
import { DownloadModelRequest, SUGGESTED_MODEL_REPOS, type DownloadModelParams, type DownloadModelResult } from '../../server/src/protocol/download-model';

export const DOWNLOAD_MODEL_COMMAND = 'vlcache.downloadModel';
const TOKEN_SECRET = 'vlcache.huggingFaceToken';
/** `vlcache.model.hubEndpoint`: the hub (or a mirror) to download from; empty: HF_ENDPOINT, else huggingface.co. */
const HUB_ENDPOINT_SETTING = 'model.hubEndpoint';

/** Arguments a caller (a test, a walkthrough link) can pass to skip the questions. */
interface DownloadArgs {
  repo?: string;
  dest?: string;
  revision?: string;
  /** Set the setting without asking to restart. */
  quiet?: boolean;
}

export function registerDownloadModelCommand(context: vscode.ExtensionContext, daemon: Daemon): vscode.Disposable {
  return vscode.commands.registerCommand(DOWNLOAD_MODEL_COMMAND, async (args?: DownloadArgs): Promise<DownloadModelResult | undefined> => {
    const repo = args?.repo ?? (await pickRepo());
    if (!repo) return undefined;
    const dest = args?.dest ?? (await pickDest());
    if (!dest) return undefined;
    const again: DownloadArgs = { repo, dest, revision: args?.revision, quiet: args?.quiet };
    try {
      const token = await context.secrets.get(TOKEN_SECRET);
      const endpoint = vscode.workspace.getConfiguration('vlcache').get<string>(HUB_ENDPOINT_SETTING)?.trim() || undefined;
      const r = await download(daemon, { repo, dest, revision: args?.revision, token, endpoint });
      if (!r) return undefined; // cancelled: the .part files wait for the next try
      daemon.output.appendLine(`Downloaded ${r.repo}@${r.commit} (${r.modelType}) into ${r.dir}: ${mib(r.fetchedBytes)} of ${mib(r.totalBytes)} MiB fetched`);
      const config = vscode.workspace.getConfiguration('vlcache');
      const unchanged = config.inspect<string>('modelPath')?.globalValue === r.dir;
      await config.update('modelPath', r.dir, vscode.ConfigurationTarget.Global);
      // A changed setting gets main.ts's restart offer; an unchanged one (a download again) gets ours.
      if (!args?.quiet) void tellDone(r, unchanged);
      return r;
    } catch (e) {
      const message = `${repo} was not downloaded: ${describe(e)}`;
      daemon.output.appendLine(`Download failed: ${message}`);
      // Not awaited: the command returns while the message waits for the user; Retry runs it again.
      void offerRetry(context, daemon, message, again);
      if (args?.repo) throw new Error(message); // a caller with arguments; the palette would show it twice
      return undefined;
    }
  });
}

async function offerRetry(context: vscode.ExtensionContext, daemon: Daemon, message: string, again: DownloadArgs): Promise<void> {
  const gated = /answered 40[13]/.test(message);
  const pick = await vscode.window.showErrorMessage(`VLCache: ${message}`, ...(gated ? ['Enter Token…'] : ['Retry']), 'Show Output');
  if (pick === 'Show Output') daemon.output.show();
  if (pick === 'Retry' || (pick === 'Enter Token…' && (await askToken(context)))) {
    // The run again reports its own failure; its rejection (it has arguments) has no one to go to.
    void vscode.commands.executeCommand(DOWNLOAD_MODEL_COMMAND, again).then(undefined, () => undefined);
  }
}

async function pickRepo(): Promise<string | undefined> {
  const other = 'Other…';
  const items: vscode.QuickPickItem[] = [
    ...SUGGESTED_MODEL_REPOS.map((label) => ({ label, description: SIZES[label] })),
    { label: other, description: 'any Qwen2-VL / Qwen2.5-VL model id on the Hugging Face hub' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: 'VLCache: Download Model', placeHolder: 'A Qwen2-VL / Qwen2.5-VL checkpoint' });
  if (!pick) return undefined;
  if (pick.label !== other) return pick.label;
  return vscode.window.showInputBox({
    title: 'VLCache: Download Model', prompt: 'Hugging Face model id (owner/name)', placeHolder: 'Qwen/Qwen2-VL-7B-Instruct',
    validateInput: (v) => (/^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(v.trim()) && !v.includes('..') ? undefined : 'owner/name, e.g. Qwen/Qwen2-VL-2B-Instruct'),
  }).then((v) => v?.trim());
}

/** Approximate download sizes (bf16 safetensors), to choose with. */
const SIZES: Record<string, string> = {
  'Qwen/Qwen2-VL-2B-Instruct': '≈ 4.4 GB',
  'Qwen/Qwen2.5-VL-3B-Instruct': '≈ 7.5 GB',
  'Qwen/Qwen2.5-VL-7B-Instruct': '≈ 16.6 GB',
};

async function pickDest(): Promise<string | undefined> {
  const defaultDir = join(homedir(), 'models');
  const useDefault = `Download into ${defaultDir}`;
  const pick = await vscode.window.showQuickPick([useDefault, 'Choose Another Folder…'], { title: 'VLCache: Download Model — where to' });
  if (!pick) return undefined;
  if (pick === useDefault) return defaultDir;
  const folder = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Download Here' });
  return folder?.[0].fsPath;
}

async function askToken(context: vscode.ExtensionContext): Promise<boolean> {
  const token = await vscode.window.showInputBox({
    title: 'Hugging Face token', prompt: 'A read token (huggingface.co/settings/tokens); kept in VS Code secret storage, sent to the hub only',
    password: true, ignoreFocusOut: true,
  });
  if (!token?.trim()) return false;
  await context.secrets.store(TOKEN_SECRET, token.trim());
  return true;
}

/** The daemon's download with a progress notification; undefined when the user cancelled it. */
async function download(daemon: Daemon, params: Omit<DownloadModelParams, 'workDoneToken'>): Promise<DownloadModelResult | undefined> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `VLCache: downloading ${params.repo}`, cancellable: true },
    async (progress, token) => {
      const client = await daemon.start();
      const workDoneToken = randomUUID();
      let shown = 0;
      const sub = client.onProgress(WorkDoneProgress.type, workDoneToken, (p) => {
        if (p.kind === 'end') return;
        const pct = p.percentage ?? shown;
        progress.report({ message: p.message, increment: Math.max(0, pct - shown) });
        shown = Math.max(shown, pct);
      });
      try {
        // Sent by method name (see daemon.ts `send`: the RequestType object belongs to the server's jsonrpc copy).
        return await client.sendRequest<DownloadModelResult>(DownloadModelRequest.method, { ...params, workDoneToken }, token);
      } catch (e) {
        if (token.isCancellationRequested) {
          void vscode.window.showInformationMessage(`VLCache: the download of ${params.repo} was cancelled; downloading it again resumes where it stopped.`);
          return undefined;
        }
        throw e;
      } finally {
        sub.dispose();
      }
    },
  );
}

async function tellDone(r: DownloadModelResult, offerRestart: boolean): Promise<void> {
  const pick = await vscode.window.showInformationMessage(
    `VLCache: ${r.repo} is downloaded and checked; ${MODEL_SETTING} is now ${r.dir}.`, ...(offerRestart ? ['Use It Now (Restart Daemon)'] : []), 'Reveal Folder');
  if (pick === 'Reveal Folder') void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(r.dir));
  if (pick?.startsWith('Use It Now')) void vscode.commands.executeCommand('vlcache.restartDaemon');
}

const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
