/**
 * `vlcache/gpuInstall` in the daemon: the CUDA provider install (gpu/install.ts) with
 * work-done progress for the extension's notification, then the machine checks. The
 * engine keeps running meanwhile; it uses the provider from its next start.
 */
import { LSPErrorCodes, ResponseError, type WorkDoneProgressReport } from 'vscode-languageserver-protocol';
import type { ClientSink } from './server';
import type { GpuInstallParams, GpuInstallResult } from './protocol/gpu-install';
import { runDoctor } from './gpu/doctor';
import { DownloadError } from './gpu/download';
import { installProvider, type InstallProgress } from './gpu/install';
import { cudaPackageFor } from './gpu/provider-package';

/** Share of the bar for the download; verify + extract take the rest. */
const DOWNLOAD_SHARE = 90;

export async function gpuInstall(params: GpuInstallParams, sink: ClientSink, signal?: AbortSignal): Promise<GpuInstallResult> {
  if (params.provider !== 'cuda') throw new ResponseError(-32602, `unknown provider ${JSON.stringify(params.provider)}; only 'cuda'`);
  const pkg = cudaPackageFor();
  if ('unsupported' in pkg) throw new Error(pkg.unsupported);
  const token = params.workDoneToken;
  const send = (value: WorkDoneProgressReport): void => { if (token !== undefined) sink.sendWorkDone(token, value); };
  if (token !== undefined) sink.sendWorkDone(token, { kind: 'begin', title: 'VLCache: installing the CUDA provider', cancellable: true, percentage: 0 });
  let lastPct = -1;
  const onProgress = (p: InstallProgress): void => {
    const pct = progressPercentage(p);
    if (p.phase === 'download' && p.download && pct === lastPct) return; // one report per percent
    lastPct = pct;
    send({ kind: 'report', percentage: pct, message: progressMessage(p) });
  };
  try {
    const r = await installProvider(pkg, { force: params.force, signal, onProgress });
    sink.log(`vlcache/gpuInstall: ${r.changed ? 'installed' : 'already installed'} in ${r.dir} (from ${r.registry})`);
    return {
      installed: true, changed: r.changed, dir: r.dir, registry: r.registry,
      checks: runDoctor().checks.map((c) => ({ ...c })),
      restartNeeded: r.changed,
    };
  } catch (e) {
    if (e instanceof DownloadError && e.kind === 'cancelled') throw new ResponseError(LSPErrorCodes.RequestCancelled, 'the install was cancelled; nothing was installed');
    throw e;
  } finally {
    if (token !== undefined) sink.sendWorkDone(token, { kind: 'end' });
  }
}

function progressPercentage(p: InstallProgress): number {
  if (p.phase === 'resolve') return 0;
  if (p.phase === 'download') {
    const d = p.download;
    return d?.total ? Math.floor((DOWNLOAD_SHARE * d.bytes) / d.total) : 0;
  }
  return p.phase === 'verify' ? DOWNLOAD_SHARE : p.phase === 'extract' ? DOWNLOAD_SHARE + 2 : 100;
}

function progressMessage(p: InstallProgress): string {
  if (p.phase !== 'download' || !p.download) return p.message;
  const mb = (n: number): string => (n / 2 ** 20).toFixed(0);
  return `downloading ${mb(p.download.bytes)}${p.download.total ? ` of ${mb(p.download.total)}` : ''} MiB`;
}
