/**
 * "VLCache: Install CUDA Provider": the daemon downloads ONNX Runtime's CUDA provider from
 * the npm registry (`vlcache/gpuInstall`) while a cancellable notification shows its
 * progress; then the machine checks are told (what is still missing, and how to get it),
 * and a restart is offered, since the daemon loads the provider when it starts.
 */
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { describe, type Daemon } from './daemon';
import { GpuInstallProgressType, GpuInstallRequest, type GpuInstallParams, type GpuInstallResult } from '../../server/src/protocol/gpu-install';

export const INSTALL_CUDA_COMMAND = 'vlcache.installCudaProvider';

/** Options a caller (a test) can pass: reinstall, and skip the follow-up questions. */
interface InstallOptions {
  force?: boolean;
  quiet?: boolean;
}

export function registerGpuInstallCommand(daemon: Daemon): vscode.Disposable {
  return vscode.commands.registerCommand(INSTALL_CUDA_COMMAND, async (opts?: InstallOptions) => {
    try {
      const r = await installCuda(daemon, opts?.force ?? false);
      if (r && !opts?.quiet) void tellResult(daemon, r);
      return r;
    } catch (e) {
      void vscode.window.showErrorMessage(`VLCache: the CUDA provider was not installed: ${describe(e)}`, 'Show Output')
        .then((pick) => { if (pick) daemon.output.show(); });
      return undefined;
    }
  });
}

/** Runs the install with a progress notification; undefined when the user cancelled it. */
async function installCuda(daemon: Daemon, force: boolean): Promise<GpuInstallResult | undefined> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'VLCache: installing the CUDA provider', cancellable: true },
    async (progress, token) => {
      const client = await daemon.start();
      const workDoneToken = randomUUID();
      let shown = 0;
      const sub = client.onProgress(GpuInstallProgressType, workDoneToken, (p) => {
        if (p.kind === 'end') return;
        const pct = p.percentage ?? shown;
        progress.report({ message: p.message, increment: Math.max(0, pct - shown) });
        shown = Math.max(shown, pct);
      });
      try {
        const params: GpuInstallParams = { provider: 'cuda', force, workDoneToken };
        // Sent by method name (see daemon.ts `send`: the RequestType object belongs to the server's jsonrpc copy).
        return await client.sendRequest<GpuInstallResult>(GpuInstallRequest.method, params, token);
      } catch (e) {
        if (token.isCancellationRequested) return undefined;
        throw e;
      } finally {
        sub.dispose();
      }
    },
  );
}

/** What is installed, what is still missing, and the restart that makes the daemon use it. */
async function tellResult(daemon: Daemon, r: GpuInstallResult): Promise<void> {
  daemon.output.appendLine(`CUDA provider ${r.changed ? 'installed' : 'already installed'} in ${r.dir} (from ${r.registry})`);
  for (const c of r.checks) daemon.output.appendLine(`  ${c.status === 'ok' ? '✓' : c.status === 'info' ? '·' : '✗'} ${c.detail}${c.fix ? ` — ${c.fix}` : ''}`);
  const cudaIds = new Set(['driver', 'gpu', 'cuda-libraries']);
  const blocking = r.checks.filter((c) => cudaIds.has(c.id) && (c.status === 'missing' || c.status === 'problem'));
  const head = r.changed ? 'VLCache: the CUDA provider is installed.' : 'VLCache: the CUDA provider was already installed.';
  if (blocking.length) {
    const pick = await vscode.window.showWarningMessage(`${head} CUDA cannot run yet: ${blocking.map((c) => c.detail).join('; ')}.`,
      { detail: blocking.map((c) => c.fix).filter(Boolean).join('\n') }, 'Show Details');
    if (pick) daemon.output.show();
    return;
  }
  if (!r.restartNeeded) return;
  const pick = await vscode.window.showInformationMessage(`${head} Restart the daemon to run on CUDA (with the device setting \`auto\` or \`cuda\`).`, 'Restart Daemon');
  if (pick) void vscode.commands.executeCommand('vlcache.restartDaemon');
}
