/**
 * `vlcache model download`: one Qwen2-VL / Qwen2.5-VL checkpoint from the Hugging Face hub
 * into `<destRoot>/<repo name>`. Only the files the engine reads are fetched; each goes
 * through a `.part` file (resumed with a Range request) and is renamed into place only once
 * verified (sha256 for LFS files, size for the others). config.json comes first and an
 * unsupported model_type is refused before any weight is fetched; the finished folder is
 * checked with the engine's own loadCheckpoint.
 */
import { existsSync, mkdirSync, readFileSync, statfsSync, statSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadCheckpoint, parseModelConfig } from '../engine/checkpoint';
import { CheckpointError } from '../engine/errors';
import { download, DownloadError } from '../gpu/download';
import { checkRepoId, HubError, hubFetch, listRevision, resolveUrl, type HubFile, type HubOptions } from './hub';

/** Files besides the weights that the engine reads (checkpoint.ts, tokenizer.ts, chat-template.ts). */
const ENGINE_FILES = new Set([
  'config.json', 'generation_config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json',
  'chat_template.json', 'chat_template.jinja', 'model.safetensors.index.json',
]);

export interface ModelDownloadProgress {
  /** The file being fetched now. */
  readonly file: string;
  /** Bytes of all selected files present so far (resumed bytes included) and their total. */
  readonly bytes: number;
  readonly total: number;
  /** Bytes that were already on disk from an earlier attempt (files kept or .part resumed). */
  readonly resumed: number;
}

export interface ModelDownloadOptions {
  readonly hub: HubOptions;
  readonly revision?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: ModelDownloadProgress) => void;
  /** An attempt that receives nothing for this long is aborted and resumed (default 60 s). */
  readonly stallMs?: number;
}

export interface ModelDownloadResult {
  readonly dir: string;
  readonly repo: string;
  readonly commit: string;
  readonly modelType: string;
  readonly files: readonly string[];
  /** Bytes of the selected files and how many of them came over the network in this call. */
  readonly totalBytes: number;
  readonly fetchedBytes: number;
}

export class ModelDownloadError extends Error {
  constructor(message: string, readonly kind: 'hub' | 'unsupported' | 'integrity' | 'network' | 'invalid' | 'cancelled') {
    super(message);
    this.name = 'ModelDownloadError';
  }
}

/** The engine's files of a revision: top-level only (no sub-folders), weights last. */
export function selectFiles(files: readonly HubFile[]): HubFile[] {
  const chosen = files.filter((f) => !f.name.includes('/') && (ENGINE_FILES.has(f.name) || f.name.endsWith('.safetensors')));
  const isWeight = (f: HubFile): boolean => f.name.endsWith('.safetensors');
  // config.json first: its model_type decides whether anything else is fetched.
  const rank = (f: HubFile): number => (f.name === 'config.json' ? 0 : isWeight(f) ? 2 : 1);
  return chosen.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

export async function downloadModel(repo: string, destRoot: string, opts: ModelDownloadOptions): Promise<ModelDownloadResult> {
  checkRepoId(repo);
  const revision = opts.revision ?? 'main';
  const fetcher = hubFetch(opts.hub);
  const revisionInfo = await wrap(() => listRevision(opts.hub, repo, revision, opts.signal), opts.signal);
  const files = selectFiles(revisionInfo.files);
  const names = new Set(files.map((f) => f.name));
  for (const need of ['config.json', 'tokenizer.json']) {
    if (!names.has(need)) throw new ModelDownloadError(`${repo}@${revision} has no ${need}: it is not a Qwen2-VL / Qwen2.5-VL checkpoint in the transformers layout`, 'invalid');
  }
  if (!files.some((f) => f.name.endsWith('.safetensors'))) {
    throw new ModelDownloadError(`${repo}@${revision} has no .safetensors weights (only safetensors checkpoints can be loaded)`, 'invalid');
  }
  const dir = join(resolve(destRoot), basename(repo));
  mkdirSync(dir, { recursive: true });

  checkFreeSpace(dir, files);
  const total = files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  let resumed = 0;
  let fetched = 0;
  let modelType = '';
  for (const f of files) {
    const dest = join(dir, f.name);
    const url = resolveUrl(opts.hub, repo, revisionInfo.commit, f.name);
    const report = (fileBytes: number): void => opts.onProgress?.({ file: f.name, bytes: done + fileBytes, total, resumed });
    if (f.sha256) {
      let firstReport = true;
      let fileFetched = 0;
      await wrap(() => download(url, dest, `sha256-${Buffer.from(f.sha256!, 'hex').toString('base64')}`, {
        fetch: fetcher, partialSuffix: '.part', signal: opts.signal, stallMs: opts.stallMs, attempts: 5,
        mismatchNote: `${f.name} was not kept; download again (if it fails again, the hub or a proxy serves a different file)`,
        retryNote: 'run the download again to resume it',
        onProgress: (p) => {
          if (firstReport) { resumed += p.resumedFrom; firstReport = false; }
          fileFetched = p.bytes - p.resumedFrom;
          report(p.bytes);
        },
      }), opts.signal);
      // A file already in place (verified by download) was never reported.
      if (firstReport) resumed += f.size;
      fetched += fileFetched;
    } else {
      fetched += await fetchSmallFile(fetcher, url, dest, f, opts.signal);
    }
    done += f.size;
    report(0);
    if (f.name === 'config.json') modelType = checkConfig(dest, repo);
  }
  try {
    loadCheckpoint(dir);
  } catch (e) {
    if (e instanceof CheckpointError) throw new ModelDownloadError(`the downloaded folder ${dir} is not a usable checkpoint: ${e.message}`, 'invalid');
    throw e;
  }
  return { dir, repo, commit: revisionInfo.commit, modelType, files: files.map((f) => f.name), totalBytes: total, fetchedBytes: fetched };
}

/** Refuses to start when the folder's filesystem cannot hold what is still missing (a full disk halfway is worse). */
function checkFreeSpace(dir: string, files: readonly HubFile[]): void {
  let missing = 0;
  for (const f of files) {
    const dest = join(dir, f.name);
    const have = existsSync(dest) ? statSync(dest).size : existsSync(`${dest}.part`) ? statSync(`${dest}.part`).size : 0;
    missing += Math.max(0, f.size - have);
  }
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  if (free < missing) {
    throw new ModelDownloadError(`${dir} has ${(free / 2 ** 30).toFixed(1)} GiB free but the download needs ${(missing / 2 ** 30).toFixed(1)} GiB more; free some space or choose another folder`, 'invalid');
  }
}

/** A file without an LFS sha256 (a small JSON): fetched whole, size checked, renamed into place. */
async function fetchSmallFile(fetcher: ReturnType<typeof hubFetch>, url: string, dest: string, f: HubFile, signal?: AbortSignal): Promise<number> {
  const res = await wrap(() => fetcher(url, { signal, headers: { 'accept-encoding': 'identity' } }), signal);
  if (!res.ok) throw new ModelDownloadError(`the hub answered ${res.status} for ${url}`, 'hub');
  const bytes = Buffer.from(await wrap(() => res.arrayBuffer(), signal));
  if (bytes.byteLength !== f.size) {
    throw new ModelDownloadError(`${f.name} is ${bytes.byteLength} bytes, the hub's file list says ${f.size}; it was not kept`, 'integrity');
  }
  const part = `${dest}.part`;
  writeFileSync(part, bytes);
  renameSync(part, dest);
  return bytes.byteLength;
}

/** Parses the downloaded config.json: an unsupported model_type stops here, before any weight. */
function checkConfig(file: string, repo: string): string {
  try {
    return parseModelConfig(JSON.parse(readFileSync(file, 'utf8')), undefined, file).modelType;
  } catch (e) {
    if (e instanceof CheckpointError && e.code === 'UnsupportedModelType') {
      rmSync(file, { force: true });
      throw new ModelDownloadError(`${repo} is not a Qwen2-VL / Qwen2.5-VL model: ${e.message} No weights were downloaded.`, 'unsupported');
    }
    if (e instanceof SyntaxError) throw new ModelDownloadError(`${repo}'s config.json is not JSON: ${e.message}`, 'invalid');
    throw e;
  }
}

/** Runs `f`, turning network, hub and cancellation failures into ModelDownloadError. */
async function wrap<T>(f: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ModelDownloadError) throw e;
    if (signal?.aborted || (e instanceof DownloadError && e.kind === 'cancelled')) {
      throw new ModelDownloadError('the download was cancelled; the .part files are kept and the next download resumes them', 'cancelled');
    }
    if (e instanceof DownloadError) throw new ModelDownloadError(e.message, e.kind === 'integrity' ? 'integrity' : 'network');
    if (e instanceof HubError) throw new ModelDownloadError(e.message, 'hub');
    const err = e as Error & { cause?: Error };
    throw new ModelDownloadError(`the hub could not be reached: ${err.cause?.message ?? err.message}; run the download again to resume it`, 'network');
  }
}
