/**
 * `vlcache/downloadModel` in the daemon: models/download-model.ts with work-done progress
 * for the extension's notification. The engine keeps running meanwhile; the extension
 * points vlcache.modelPath at the result.
 */
import { ErrorCodes, LSPErrorCodes, ResponseError } from 'vscode-languageserver-protocol';
import type { ClientSink } from './server';
import type { DownloadModelParams, DownloadModelResult } from './protocol/download-model';
import { downloadModel, ModelDownloadError } from './models/download-model';
import { hubOptionsFromEnv } from './models/hub';

/** One download at a time: two would share .part files. */
let running: string | undefined;

export async function downloadModelRequest(params: DownloadModelParams, sink: ClientSink, signal?: AbortSignal): Promise<DownloadModelResult> {
  if (typeof params?.repo !== 'string' || typeof params.dest !== 'string' || params.dest === '') {
    throw new ResponseError(-32602, 'vlcache/downloadModel needs {repo: "owner/name", dest: folder}');
  }
  if (running) throw new ResponseError(ErrorCodes.InternalError, `a download of ${running} is already running; wait for it or cancel it`);
  running = params.repo;
  const token = params.workDoneToken;
  if (token !== undefined) sink.sendWorkDone(token, { kind: 'begin', title: `VLCache: downloading ${params.repo}`, cancellable: true, percentage: 0 });
  let last = '';
  try {
    const r = await downloadModel(params.repo, params.dest, {
      hub: hubOptionsFromEnv(params.endpoint?.trim() ? { ...process.env, HF_ENDPOINT: params.endpoint } : process.env, params.token), revision: params.revision, signal,
      onProgress: (p) => {
        if (token === undefined) return;
        const pct = p.total ? Math.floor((100 * p.bytes) / p.total) : 0;
        const message = `${p.file}, ${mib(p.bytes)} of ${mib(p.total)} MiB`;
        const key = `${pct} ${p.file}`;
        if (key === last) return; // one report per percent and file
        last = key;
        sink.sendWorkDone(token, { kind: 'report', percentage: pct, message });
      },
    });
    sink.log(`vlcache/downloadModel: ${r.repo}@${r.commit} in ${r.dir} (${mib(r.fetchedBytes)} of ${mib(r.totalBytes)} MiB fetched)`);
    return { ...r, files: [...r.files] };
  } catch (e) {
    if (e instanceof ModelDownloadError && e.kind === 'cancelled') throw new ResponseError(LSPErrorCodes.RequestCancelled, e.message);
    // The message as it is: the connection would prefix any other Error with "Request vlcache/downloadModel failed with message:".
    if (e instanceof Error && !(e instanceof ResponseError)) throw new ResponseError(ErrorCodes.InternalError, e.message);
    throw e;
  } finally {
    running = undefined;
    if (token !== undefined) sink.sendWorkDone(token, { kind: 'end' });
  }
}

const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
