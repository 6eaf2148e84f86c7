/**
 * The daemon's behaviour, free of any transport: handlers take protocol Params
 * and return protocol Results, and talk back through a {@link ClientSink}.
 * server/src/main.ts wires them to an LSP connection; tests drive them directly.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ResponseError } from 'vscode-languageserver-protocol';
import type {
  InitializeParams, ProgressToken, ProgressType, WorkDoneProgressBegin, WorkDoneProgressEnd, WorkDoneProgressReport,
} from 'vscode-languageserver-protocol';
import { loadCheckpoint } from './engine/checkpoint';
import { VlModel } from './engine/model';
import { TieredStore } from './cache/store';
import { Generator, type ImageInput } from './planner/generate';
import { loadSchedule, type LayerSchedule } from './planner/schedule';
import { reuseFor } from './planner/vlcache';
import { builtinModelDir } from './paths';
import { parseConfig, type ServerConfig } from './config';
import { resolveImagePath, toAskResult, toResponseError, workspaceRoots } from './convert';
import { Scheduler } from './scheduler/queue';
import { AskPartialResultType, type AskParams, type AskResult } from './protocol/ask';
import type { ClearCacheResult } from './protocol/clear-cache';
import { ErrorCodes, type PathErrorData } from './protocol/errors';
import { PROTOCOL_VERSION, type VlcacheInitializeResult } from './protocol/initialize';
import type { PrefetchParams, PrefetchResult } from './protocol/prefetch';
import type { StatsResult, TierSummary } from './protocol/stats';
import type { StatusParams } from './protocol/status';

/** How the server talks back to the client; main.ts implements it over the connection. */
export interface ClientSink {
  /** A `vlcache/status` notification. */
  sendStatus(params: StatusParams): void;
  /** A `$/progress` partial result on a request's partialResultToken. */
  sendPartialResult<P>(type: ProgressType<P>, token: ProgressToken, value: P): void;
  /** A `$/progress` work-done notification on a request's workDoneToken. */
  sendWorkDone(token: ProgressToken, value: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd): void;
  /** A line for the output channel (never stdout: stdout is the LSP channel). */
  log(message: string): void;
}

/** The loaded model and everything that depends on it. */
interface Engine {
  model: VlModel;
  store: TieredStore;
  gen: Generator;
  schedule?: LayerSchedule;
}

export class VlcacheServer {
  private config?: ServerConfig;
  private roots: string[] = [];
  private readonly scheduler = new Scheduler();
  private engine?: Promise<Engine>;
  private modelState: StatsResult['model'] = { state: 'unloaded', path: '', fallbackReasons: [] };
  private readonly counts = { nAsks: 0, nPrefetches: 0, nCancelled: 0 } as StatsResult['requests'];

  constructor(private readonly sink: ClientSink) {}

  /**
   * `initialize`: validates initializationOptions, records the workspace folders,
   * and loads the model now when `loadModelAtStartup` is set.
   * @throws ResponseError InvalidParams for bad options, ModelLoadFailed.
   */
  async initialize(params: InitializeParams): Promise<VlcacheInitializeResult> {
    this.config = parseConfig(params.initializationOptions);
    const folders = params.workspaceFolders?.map((f) => f.uri) ?? (params.rootUri ? [params.rootUri] : params.rootPath ? [params.rootPath] : []);
    this.roots = workspaceRoots(folders);
    this.modelState = { state: 'unloaded', path: this.config.modelPath ?? builtinModelDir(), fallbackReasons: [] };
    if (this.config.loadModelAtStartup) await this.loadEngine().catch((e) => { throw toResponseError(e); });
    return { capabilities: {}, serverInfo: { name: 'vlcache' }, protocolVersion: PROTOCOL_VERSION };
  }

  /**
   * `vlcache/ask`: queued as interactive; streams text deltas as partial results.
   * `signal` (the request's cancellation) drops it while queued (RequestCancelled)
   * or stops generation between steps (a result with stopReason 'cancelled').
   * @throws ResponseError PathOutsideWorkspace, InvalidImage, ContextExceeded, ModelLoadFailed, RequestCancelled.
   */
  async ask(params: AskParams, signal?: AbortSignal): Promise<AskResult> {
    const cfg = this.requireConfig();
    if (typeof params?.question !== 'string' || params.question.trim() === '') {
      throw new ResponseError(ErrorCodes.InvalidParams, 'vlcache/ask needs a non-empty question');
    }
    const refs = params.images ?? [];
    const paths = refs.map((r) => resolveImagePath(r, this.roots));
    const progress = params.workDoneToken;
    const report = (message: string) => { if (progress !== undefined) this.sink.sendWorkDone(progress, { kind: 'report', message }); };
    if (progress !== undefined) this.sink.sendWorkDone(progress, { kind: 'begin', title: 'VLCache', message: 'queued', cancellable: true });
    const tQueued = performance.now();
    try {
      const job = this.scheduler.enqueue('interactive', async (abort) => {
        const images = paths.map((p, i) => readImage(refs[i], p));
        if (!this.engine) report('loading the model');
        const engine = await this.loadEngine();
        const queueMs = performance.now() - tQueued;
        report('generating');
        const r = await engine.gen.ask({
          images, question: params.question, history: params.history, maxTokens: params.maxTokens ?? 256,
          sampling: { temperature: params.temperature, topP: params.topP, seed: params.seed },
          mode: params.mode ?? cfg.mode, ratio: params.ratio ?? cfg.ratio,
          schedule: params.ratio === undefined && cfg.ratio === undefined ? engine.schedule?.ratios : undefined,
          maxPixels: cfg.maxPixels, signal: abort,
          onText: params.partialResultToken === undefined ? undefined
            : (delta) => this.sink.sendPartialResult(AskPartialResultType, params.partialResultToken!, { delta }),
        });
        return toAskResult(r, refs, queueMs);
      }, signal);
      const result = await job.result;
      this.counts.nAsks++;
      if (result.stopReason === 'cancelled') this.counts.nCancelled++;
      this.counts.lastTtftMs = result.timings.ttftMs;
      this.counts.lastRecomputeFraction = result.cache.recomputeFraction;
      this.sink.sendStatus({ kind: 'stats', stats: this.stats() });
      return result;
    } catch (e) {
      if (signal?.aborted) this.counts.nCancelled++;
      throw toResponseError(e);
    } finally {
      if (progress !== undefined) this.sink.sendWorkDone(progress, { kind: 'end' });
    }
  }

  /**
   * `vlcache/prefetch`: one background job per image (encode + prefill, one
   * sampled token), so an interactive ask runs between two images.
   * @throws ResponseError PathOutsideWorkspace (before anything is queued).
   */
  async prefetch(params: PrefetchParams, signal?: AbortSignal): Promise<PrefetchResult> {
    const cfg = this.requireConfig();
    const refs = params?.images ?? [];
    const paths = refs.map((r) => resolveImagePath(r, this.roots));
    const jobs = paths.map((p, i) => this.scheduler.enqueue('background', async (abort) => {
      const engine = await this.loadEngine();
      const r = await engine.gen.ask({ images: [readImage(refs[i], p)], question: 'Describe the image.', maxTokens: 1,
        mode: cfg.mode, ratio: cfg.ratio, maxPixels: cfg.maxPixels, signal: abort });
      // The image's KV comes back as an image-KV hit, or as part of an exact prefix (same image first, same prompt).
      const kvReused = r.cache.kv_hits > 0 || r.cache.prefix_tokens_reused > 0;
      return r.cache.encoder_hits > 0 && kvReused ? 'cached' as const : 'computed' as const;
    }, signal));
    const settled = await Promise.allSettled(jobs.map((j) => j.result));
    this.counts.nPrefetches++;
    const images: PrefetchResult['images'] = [];
    let cancelled = false;
    for (const [i, s] of settled.entries()) {
      if (s.status === 'fulfilled') images.push({ image: refs[i], state: s.value });
      else if (signal?.aborted) cancelled = true;
      else throw toResponseError(s.reason);
    }
    if (images.length) this.sink.sendStatus({ kind: 'stats', stats: this.stats() });
    return { images, cancelled };
  }

  /** `vlcache/clearCache`: empties RAM and disk tiers and the in-memory prefix and device caches. */
  async clearCache(signal?: AbortSignal): Promise<ClearCacheResult> {
    this.requireConfig();
    const job = this.scheduler.enqueue('interactive', async () => {
      if (!this.engine) return { nEntriesRemoved: 0, bytesRemoved: 0 };
      const e = await this.engine;
      const before = e.store.stats();
      e.store.clear();
      await e.gen.reuse?.deviceKv?.dispose();
      // A fresh ReuseEngine forgets the exact-prefix index and the device tier of the old one.
      e.gen = newGenerator(e.model, e.store, (m) => this.sink.log(m));
      const count = (s: typeof before) => s.ram.nEntries + (s.disk?.nEntries ?? 0);
      const bytes = (s: typeof before) => s.ram.bytes + (s.disk?.bytes ?? 0);
      const after = e.store.stats();
      return { nEntriesRemoved: count(before) - count(after), bytesRemoved: bytes(before) - bytes(after) };
    }, signal);
    try {
      const r = await job.result;
      this.sink.sendStatus({ kind: 'stats', stats: this.stats() });
      return r;
    } catch (e) {
      throw toResponseError(e);
    }
  }

  /** `vlcache/stats`. */
  stats(): StatsResult {
    const s = this.loaded?.store.stats();
    const tier = (t: { nEntries: number; bytes: number; budgetBytes: number; nEvictions: number }): TierSummary =>
      ({ nEntries: t.nEntries, bytes: t.bytes, budgetBytes: t.budgetBytes, nEvictions: t.nEvictions });
    return {
      model: { ...this.modelState, fallbackReasons: [...this.modelState.fallbackReasons] },
      cacheDir: this.config?.cacheDir,
      cache: s && {
        ram: tier(s.ram),
        disk: s.disk && { ...tier(s.disk), dir: s.disk.dir },
        hits: { encoder: s.hits.encoder, kv: s.hits.kv },
        misses: { encoder: s.misses.encoder, kv: s.misses.kv },
      },
      requests: { ...this.counts },
      queue: this.scheduler.counts(),
    };
  }

  /** `shutdown`: drops queued work, stops the running request, writes the cache out and frees the device. */
  async shutdown(): Promise<void> {
    await this.scheduler.close();
    const e = await this.engine?.catch(() => undefined);
    this.engine = undefined;
    this.loaded = undefined;
    if (!e) return;
    await e.store.close();
    await e.gen.reuse?.deviceKv?.dispose();
    await e.model.dispose();
  }

  private loaded?: Engine;

  private requireConfig(): ServerConfig {
    if (!this.config) throw new ResponseError(ErrorCodes.InvalidParams, 'the server is not initialized yet');
    return this.config;
  }

  /** Loads the model once (a failed load is retried by the next request), reporting progress as vlcache/status. */
  private loadEngine(): Promise<Engine> {
    this.engine ??= this.load().then(
      (e) => { this.loaded = e; return e; },
      (err) => {
        this.engine = undefined;
        this.modelState = { ...this.modelState, state: 'failed' };
        this.sink.sendStatus({ kind: 'error', message: (err as Error).message, code: ErrorCodes.ModelLoadFailed });
        throw err;
      });
    return this.engine;
  }

  private async load(): Promise<Engine> {
    const cfg = this.requireConfig();
    const log = (m: string) => this.sink.log(m);
    const path = this.modelState.path;
    const t0 = performance.now();
    this.modelState = { ...this.modelState, state: 'loading' };
    this.sink.sendStatus({ kind: 'loading', message: `reading the checkpoint ${path}`, percentage: 0 });
    const ckpt = loadCheckpoint(path);
    for (const w of ckpt.warnings) log(`note: ${w}`);
    const schedule = cfg.mode === 'vlcache' && cfg.ratio === undefined
      ? loadSchedule(ckpt.fingerprint, ckpt.config.text.numLayers, log) : undefined;
    this.sink.sendStatus({ kind: 'loading', message: `loading the model graphs (device ${cfg.device})`, percentage: 30 });
    const model = await VlModel.load(ckpt, { device: cfg.device, precision: cfg.precision, log, layered: schedule !== undefined });
    this.sink.sendStatus({ kind: 'loading', message: 'opening the workspace cache', percentage: 90 });
    const store = new TieredStore({ dir: cfg.cacheDir, modelFingerprint: ckpt.fingerprint, ramBytes: cfg.ramBytes,
      diskBytes: cfg.diskBytes, log });
    const loadMs = performance.now() - t0;
    this.modelState = { state: 'ready', path, device: model.device, fallbackReasons: [...model.fallbackReasons] };
    this.sink.sendStatus({ kind: 'ready', device: model.device, modelPath: path, fallbackReasons: [...model.fallbackReasons], loadMs });
    return { model, store, gen: newGenerator(model, store, log), schedule };
  }
}

function newGenerator(model: VlModel, store: TieredStore, log: (m: string) => void): Generator {
  return new Generator(model, log, reuseFor(model, store));
}

/** @throws ResponseError InvalidImage when the file cannot be read. */
function readImage(ref: string, path: string): ImageInput {
  try {
    return { name: path, bytes: readFileSync(path) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ResponseError<PathErrorData>(ErrorCodes.InvalidImage,
      code === 'ENOENT' ? `${ref}: no such image file; check the path` : `${ref}: cannot read the image (${code})`, { path: ref, resolved: path });
  }
}
