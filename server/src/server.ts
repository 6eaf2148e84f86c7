/**
 * The daemon's behaviour, free of any transport: handlers take protocol Params
 * and return protocol Results, and talk back through a {@link ClientSink}.
 * server/src/main.ts wires them to an LSP connection; tests drive them directly.
 */
import { FileRefusedError, readRegularFile } from './engine/regular-file';
import { mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { ErrorCodes as RpcErrorCodes, LSPErrorCodes, ResponseError, TextDocumentSyncKind } from 'vscode-languageserver-protocol';
import type {
  CodeLens, CodeLensParams, Hover, HoverParams, InitializeParams, ProgressToken, ProgressType, WorkDoneProgressBegin,
  WorkDoneProgressEnd, WorkDoneProgressReport,
} from 'vscode-languageserver-protocol';
import { EngineHost, type Engine } from './engine-host';
import { ImageError } from './engine/image/errors';
import { readDeclaredSize, sniffFormat } from './engine/image/format';
import type { AskRequest as EngineAskRequest, ImageInput } from './ask/generate';
import type { ImageReuseOutcome } from './planner/image-reuse';
import { builtinModelDir } from './paths';
import { checkAskParams, checkPrefetchParams, parseConfig, type ServerConfig } from './config';
import { resolveImagePath, toAskResult, toResponseError, workspaceRoots } from './convert';
import { QueueClosedError, Scheduler, type Priority, type Scheduled } from './scheduler/queue';
import { recomputeFor } from './planner/recompute';
import { imageCodeLenses } from './hover/code-lens';
import { EXPLAIN_MAX_TOKENS, Explainer, within } from './hover/explainer';
import { Explanations, type Explanation } from './hover/explanations';
import { errorMarkdown, hoverMarkdown, hoverTarget } from './hover/hover';
import type { DocumentSource } from './hover/text-document';
import { findImageReferences, isMarkdown } from './hover/references';
import { resolveReference } from './hover/resolve';
import { warmThumbnails } from './hover/thumbnail';
import { AskPartialResultType, type AskParams, type AskResult } from './protocol/ask';
import type { ClearCacheResult } from './protocol/clear-cache';
import { ErrorCodes, type PathErrorData } from './protocol/errors';
import { EXPLAIN_QUESTION, type ExplainParams, type ExplainResult } from './protocol/explain';
import { PROTOCOL_VERSION, type VlcacheInitializeResult } from './protocol/initialize';
import type { PrefetchParams, PrefetchResult } from './protocol/prefetch';
import { addReuseCounts, askOutcome, emptyReuseCounts, reuseCounts } from './protocol/reuse';
import type { RecentAsk, StatsResult, TierSummary } from './protocol/stats';
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

/** How many finished asks `stats().requests.recent` keeps. */
const N_RECENT = 50;

/**
 * How long a hover may spend on its thumbnail, counted from the request's arrival: the hover
 * answers within 400 ms (issue 11), and the client's round trip and rendering need the rest.
 */
export const HOVER_THUMBNAIL_BUDGET_MS = 250;

/** A missing explanation starts this long after its hover, so the answer is written before the model loads. */
export const EXPLAIN_AFTER_HOVER_MS = 50;

/** At most this many images of one opened Markdown document are prefetched. */
export const PREFETCH_ON_OPEN_MAX = 8;

export class VlcacheServer {
  private config?: ServerConfig;
  private roots: string[] = [];
  private readonly scheduler = new Scheduler();
  /** Set at initialize. */
  private host?: EngineHost;
  private readonly counts = { nAsks: 0, nPrefetches: 0, nCancelled: 0 } as Omit<StatsResult['requests'], 'recent' | 'hitRate'>;
  private readonly recent: RecentAsk[] = [];
  /** Images of every finished ask, by what the cache did for them (the status bar's rate). */
  private readonly imageCounts = emptyReuseCounts();
  private explainer?: Explainer;
  private idleTimer?: NodeJS.Timeout;
  private closing = false;

  /** @param documents The open documents (vscode-languageserver's TextDocuments in main.ts). */
  constructor(private readonly sink: ClientSink, private readonly documents: DocumentSource = { get: () => undefined }) {}

  /**
   * `initialize`: validates initializationOptions, records the workspace folders,
   * and loads the model now when `loadModelAtStartup` is set.
   * @throws ResponseError InvalidParams for bad options, ModelLoadFailed.
   */
  async initialize(params: InitializeParams): Promise<VlcacheInitializeResult> {
    // A second initialize would replace the workspace folders that bound every read.
    if (this.config) throw new ResponseError(RpcErrorCodes.InvalidRequest, 'initialize was already received; a server is initialized once');
    const cfg = this.config = parseConfig(params.initializationOptions);
    const folders = params.workspaceFolders?.map((f) => f.uri) ?? (params.rootUri ? [params.rootUri] : params.rootPath ? [params.rootPath] : []);
    this.roots = workspaceRoots(folders);
    // Images the editor wrote itself (pasted into Chat) are read like workspace images.
    if (cfg.attachmentDir) {
      mkdirSync(cfg.attachmentDir, { recursive: true });
      this.roots.push(...workspaceRoots([cfg.attachmentDir]));
    }
    const log = (m: string) => this.sink.log(m);
    const modelPath = cfg.modelPath ?? builtinModelDir();
    this.host = new EngineHost(cfg, modelPath, (p) => this.sink.sendStatus(p), log);
    const recipe = JSON.stringify({ model: modelPath, question: EXPLAIN_QUESTION, maxTokens: EXPLAIN_MAX_TOKENS });
    this.explainer = new Explainer({
      explanations: new Explanations(cfg.cacheDir, recipe, log),
      run: (image) => this.runExplanation(image),
      onExplained: (image, e) => this.sink.sendStatus({ kind: 'explained', image, text: e.text }),
      log,
    });
    if (cfg.loadModelAtStartup) {
      await this.loadEngine().catch((e) => { throw toResponseError(e); });
      this.armIdleTimer();
    }
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental },
        codeLensProvider: { resolveProvider: false },
        ...(cfg.hover ? { hoverProvider: true } : {}),
        // Folders added to the window later hold images that may be asked about too.
        workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
      },
      serverInfo: { name: 'vlcache' },
      protocolVersion: PROTOCOL_VERSION,
    };
  }

  /** `workspace/didChangeWorkspaceFolders`: images may come from the folders open now, no others. */
  workspaceFoldersChanged(change: { added: readonly { uri: string }[]; removed: readonly { uri: string }[] }): void {
    const removed = new Set(workspaceRoots(change.removed.map((f) => f.uri)));
    const kept = this.roots.filter((r) => !removed.has(r));
    this.roots = [...kept, ...workspaceRoots(change.added.map((f) => f.uri)).filter((r) => !kept.includes(r))];
    this.sink.log(`workspace folders: ${this.roots.join(', ') || '(none)'}`);
  }

  /**
   * `vlcache/ask`: queued as interactive; streams text deltas as partial results.
   * `signal` (the request's cancellation) drops it while queued (RequestCancelled)
   * or stops generation between steps (a result with stopReason 'cancelled').
   * @throws ResponseError PathOutsideWorkspace, InvalidImage, ContextExceeded, ModelLoadFailed, RequestCancelled.
   */
  async ask(params: AskParams, signal?: AbortSignal): Promise<AskResult> {
    const cfg = this.requireConfig();
    checkAskParams(params);
    const refs = params.images ?? [];
    const paths = refs.map((r) => resolveImagePath(r, this.roots));
    const progress = params.workDoneToken;
    const report = (message: string) => { if (progress !== undefined) this.sink.sendWorkDone(progress, { kind: 'report', message }); };
    if (progress !== undefined) this.sink.sendWorkDone(progress, { kind: 'begin', title: 'VLCache', message: 'queued', cancellable: true });
    const tQueued = performance.now();
    try {
      const job = this.enqueue('interactive', async (abort) => {
        // NOTE: the files are read when the job starts; the answer is about these bytes even if a file changes later.
        const images = paths.map((p, i) => readImage(refs[i], p, this.roots));
        if (!this.requireHost().active) report('loading the model');
        const engine = await this.loadEngine();
        const queueMs = performance.now() - tQueued;
        report('generating');
        const r = await engine.gen.ask({
          maxPixels: cfg.maxPixels, ...recomputeFor(params.mode ?? cfg.mode, params.ratio ?? cfg.ratio, engine.schedule),
          images, question: params.question, history: params.history, maxTokens: params.maxTokens ?? 256,
          sampling: { temperature: params.temperature, topP: params.topP, seed: params.seed }, signal: abort,
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
      const c = result.cache;
      this.recent.push({ atMs: Date.now(), ttftMs: result.timings.ttftMs, recomputeFraction: c.recomputeFraction,
        cacheHit: c.encoderHits + c.kvHits + c.prefixTokensReused > 0, outcome: askOutcome(result), nImages: result.images.length });
      addReuseCounts(this.imageCounts, reuseCounts(result));
      if (this.recent.length > N_RECENT) this.recent.shift();
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
    this.requireConfig();
    checkPrefetchParams(params);
    const refs = params?.images ?? [];
    const paths = refs.map((r) => resolveImagePath(r, this.roots));
    const jobs = paths.map((p, i) => this.enqueue('background', async (abort) => {
      const engine = await this.loadEngine();
      const r = await engine.gen.ask({ images: [readImage(refs[i], p, this.roots)], question: 'Describe the image.', maxTokens: 1,
        ...this.reuseOptions(engine), signal: abort });
      // The image's KV comes back as an image-KV hit, or as part of an exact prefix (same image first, same prompt).
      const kvReused = r.cache.kvHits > 0 || r.cache.prefixTokensReused > 0;
      return r.cache.encoderHits > 0 && kvReused ? 'cached' as const : 'computed' as const;
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

  /** `vlcache/clearCache`: empties RAM and disk tiers, the in-memory prefix and device caches, and the explanations. */
  async clearCache(signal?: AbortSignal): Promise<ClearCacheResult> {
    this.requireConfig();
    const job = this.enqueue('interactive', async () => {
      this.explainer?.explanations.clear();
      const host = this.requireHost();
      if (!host.active) return { nEntriesRemoved: 0, bytesRemoved: 0 };
      const e = await host.get();
      const before = e.store.stats();
      e.store.clear();
      await host.resetReuse(e);
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

  /**
   * `textDocument/hover` on an image reference (server/src/hover/references.ts): the
   * thumbnail (none where the editor previews the image itself), size, cache state, the
   * explanation or "being prepared", and Ask / Explain command links. Answers within
   * {@link HOVER_THUMBNAIL_BUDGET_MS} plus a file read: the size comes from the header, a
   * thumbnail not made in time is left out (it is kept for the next hover), and a missing
   * explanation is started only after the answer went out (Explainer.explainLater) unless
   * `hoverWaitMs` > 0 asks to wait that long for it. `signal` cancels the waiting, never the work.
   * @throws ResponseError RequestCancelled when cancelled while waiting.
   */
  async hover(params: HoverParams, signal?: AbortSignal): Promise<Hover | null> {
    const t0 = performance.now();
    const cfg = this.requireConfig();
    const doc = cfg.hover ? this.documents.get(params.textDocument.uri) : undefined;
    const target = doc && hoverTarget(doc, params.position, this.roots);
    if (!target) return null;
    const markdown = (value: string): Hover => ({ contents: { kind: 'markdown', value }, range: target.range });
    let bytes: Buffer;
    try {
      bytes = readRegularFile(target.path, { roots: this.roots, maxBytes: MAX_IMAGE_FILE_BYTES });
    } catch {
      return null; // Gone since it was resolved, no longer a regular workspace file, or too large.
    }
    const cancelled = () => new ResponseError(LSPErrorCodes.RequestCancelled, 'the hover was cancelled');
    try {
      const size = readDeclaredSize(bytes, sniffFormat(bytes, target.name), target.name);
      const explainer = this.requireExplainer();
      const key = explainer.keyOf(bytes);
      const image = { name: target.path, bytes };
      const thumbnail = target.previewedByEditor ? undefined
        : await within(explainer.thumbnail(key, image), HOVER_THUMBNAIL_BUDGET_MS - (performance.now() - t0), signal);
      if (signal?.aborted) throw cancelled();
      let e = explainer.explanations.get(key);
      if (!e && cfg.hoverWaitMs > 0) {
        e = await within(explainer.explain(key, image), cfg.hoverWaitMs, signal);
        if (signal?.aborted) throw cancelled();
      } else if (!e) {
        explainer.explainLater(key, image, EXPLAIN_AFTER_HOVER_MS);
      }
      const uri = pathToFileURL(target.path).href;
      return markdown(hoverMarkdown(target.name, { uri, width: size.width, height: size.height, thumbnailUri: thumbnail?.dataUri }, e));
    } catch (e) {
      if (e instanceof ImageError) return markdown(errorMarkdown(target.name, e.message));
      if (e instanceof ResponseError) throw e;
      return markdown(errorMarkdown(target.name, (e as Error)?.message ?? String(e)));
    }
  }

  /**
   * A document was opened: an image worker starts for the hovers' thumbnails (not the model); when it is
   * Markdown and the model is loaded, prefetch the workspace images it shows (the first
   * {@link PREFETCH_ON_OPEN_MAX}, background priority: any question overtakes them), so a first question is
   * already a cache hit. Opening a file never loads the model.
   */
  documentOpened(uri: string): void {
    const doc = this.documents.get(uri);
    if (this.config?.hover && doc) warmThumbnails(); // a hover may come next: its thumbnail should not wait for a worker
    if (!this.config?.prefetchOnOpen || !this.host?.loaded || !doc || !isMarkdown(doc.languageId)) return;
    const paths = new Set<string>();
    for (const ref of findImageReferences(doc.getText(), doc.languageId)) {
      const path = resolveReference(ref.target, doc.uri, this.roots);
      if (path && paths.size < PREFETCH_ON_OPEN_MAX) paths.add(path);
    }
    if (paths.size === 0) return;
    void this.prefetch({ images: [...paths].map((p) => pathToFileURL(p).href) }).then(
      (r) => this.sink.log(`prefetched ${r.images.filter((i) => i.state === 'computed').length} of ${paths.size} images of ${uri}`),
      (e) => this.sink.log(`prefetching the images of ${uri}: ${(e as Error)?.message ?? String(e)}`));
  }

  /** `textDocument/codeLens`: "Ask about image" and "Explain diagram" on Markdown image links and `<img>` tags. */
  codeLens(params: CodeLensParams): CodeLens[] {
    const doc = this.config && this.documents.get(params.textDocument.uri);
    return doc ? imageCodeLenses(doc, this.roots) : [];
  }

  /**
   * `vlcache/explain`: the image's short explanation (the hover's), with its thumbnail.
   * `wait: false` answers at once ('pending' while it is computed in the background).
   * @throws ResponseError PathOutsideWorkspace, InvalidImage, ModelLoadFailed, RequestCancelled (while waiting).
   */
  async explain(params: ExplainParams, signal?: AbortSignal): Promise<ExplainResult> {
    this.requireConfig();
    if (typeof params?.image !== 'string' || params.image === '') {
      throw new ResponseError(ErrorCodes.InvalidParams, 'vlcache/explain needs an image (a file URI or workspace path)');
    }
    const path = resolveImagePath(params.image, this.roots);
    try {
      const t = await this.requireExplainer().start(readImage(params.image, path, this.roots));
      const e = t.ready ?? (params.wait ? await within(t.done, Infinity, signal) : undefined);
      if (params.wait && !e) throw new ResponseError(LSPErrorCodes.RequestCancelled, 'vlcache/explain was cancelled');
      const image = { thumbnail: t.thumbnail.dataUri, width: t.thumbnail.width, height: t.thumbnail.height };
      return e ? { state: 'ready', text: e.text, ttftMs: e.ttftMs, cacheHit: e.cacheHit, ...image } : { state: 'pending', ...image };
    } catch (e) {
      throw toResponseError(e);
    }
  }

  /** `vlcache/stats`. */
  stats(): StatsResult {
    const s = this.host?.loaded?.store.stats();
    const released = this.host?.releasedLookups ?? { hits: 0, misses: 0 };
    const tier = (t: { nEntries: number; bytes: number; budgetBytes: number; nEvictions: number }): TierSummary =>
      ({ nEntries: t.nEntries, bytes: t.bytes, budgetBytes: t.budgetBytes, nEvictions: t.nEvictions });
    const hits = released.hits + (s ? s.hits.encoder + s.hits.kv : 0);
    const lookups = hits + released.misses + (s ? s.misses.encoder + s.misses.kv : 0);
    return {
      model: this.host?.state ?? { state: 'unloaded', path: '', fallbackReasons: [] },
      cacheDir: this.config?.cacheDir,
      cache: s && {
        ram: tier(s.ram),
        disk: s.disk && { ...tier(s.disk), dir: s.disk.dir },
        hits: { encoder: s.hits.encoder, kv: s.hits.kv },
        misses: { encoder: s.misses.encoder, kv: s.misses.kv },
      },
      requests: { ...this.counts, recent: this.recent.map((r) => ({ ...r })), images: { ...this.imageCounts }, ...(lookups > 0 ? { hitRate: hits / lookups } : {}) },
      queue: this.scheduler.counts(),
    };
  }

  /** `shutdown`: drops queued work, stops the running request, writes the cache out and frees the device. */
  async shutdown(): Promise<void> {
    this.closing = true;
    clearTimeout(this.idleTimer);
    await this.scheduler.close();
    await this.host?.unload();
    await this.explainer?.explanations.flush();
  }

  /**
   * Every job goes through here: it stops the idle clock, and the job's end restarts it
   * when nothing else waits or runs.
   */
  private enqueue<T>(priority: Priority, run: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Scheduled<T> {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const job = this.scheduler.enqueue(priority, run, signal);
    void job.result.then(() => this.armIdleTimer(), () => this.armIdleTimer());
    return job;
  }

  /** Starts the idle clock when a model is loaded and the queue is empty. */
  private armIdleTimer(): void {
    const ms = this.config?.idleTimeoutMs ?? 0;
    const q = this.scheduler.counts();
    if (ms === 0 || this.closing || !this.host?.active || q.running || q.nInteractive + q.nBackground > 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.releaseIfIdle(), ms);
    this.idleTimer.unref(); // The clock alone never keeps the process alive (the connection does).
  }

  /**
   * The idle timeout passed: unload the model, device KV and cache, as a job, so that no
   * request uses them meanwhile; a request that arrived first keeps them.
   */
  private async releaseIfIdle(): Promise<void> {
    this.idleTimer = undefined;
    const job = this.scheduler.enqueue('interactive', async () => {
      const q = this.scheduler.counts();
      if (q.nInteractive + q.nBackground > 0 || !this.host?.active) return false;
      await this.host.unload(true);
      await this.explainer?.explanations.flush();
      return true;
    });
    try {
      if (!await job.result) return;
      const s = this.requireConfig().idleTimeoutMs / 1000;
      this.sink.log(`released the model after ${s} s without requests`);
      this.sink.sendStatus({ kind: 'released', reason: `no requests for ${s} s; the next request loads the model again` });
    } catch (e) {
      if (!(e instanceof QueueClosedError)) this.sink.log(`idle release failed: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  /** One explanation (hover, vlcache/explain), at background priority: interactive asks go first. */
  private async runExplanation(image: ImageInput): Promise<Explanation> {
    const job = this.enqueue('background', async (abort) => {
      const engine = await this.loadEngine();
      return engine.gen.ask({ ...this.reuseOptions(engine), images: [image], question: EXPLAIN_QUESTION,
        maxTokens: EXPLAIN_MAX_TOKENS, signal: abort });
    });
    const r = await job.result;
    // Only shutdown aborts a running background job; a partial explanation is not kept.
    if (r.stopReason === 'cancelled') throw new QueueClosedError();
    this.sink.sendStatus({ kind: 'stats', stats: this.stats() });
    return { text: r.text.trim(), ttftMs: r.timings.ttftMs, cacheHit: imageWasCached(r.images[0].reuse), width: r.images[0].width,
      height: r.images[0].height, atMs: Date.now() };
  }

  /** The configured reuse mode, ratio (or calibrated schedule) and pixel cap. */
  private reuseOptions(engine: Engine): Pick<EngineAskRequest, 'mode' | 'ratio' | 'schedule' | 'maxPixels'> {
    const cfg = this.requireConfig();
    return { maxPixels: cfg.maxPixels, ...recomputeFor(cfg.mode, cfg.ratio, engine.schedule) };
  }

  private requireExplainer(): Explainer {
    if (!this.explainer) throw new ResponseError(ErrorCodes.InvalidParams, 'the server is not initialized yet');
    return this.explainer;
  }

  private requireConfig(): ServerConfig {
    if (!this.config) throw new ResponseError(ErrorCodes.InvalidParams, 'the server is not initialized yet');
    return this.config;
  }

  private requireHost(): EngineHost {
    if (!this.host) throw new ResponseError(ErrorCodes.InvalidParams, 'the server is not initialized yet');
    return this.host;
  }

  /** The engine, loaded on first use (EngineHost reports loading and failures as vlcache/status). */
  private loadEngine(): Promise<Engine> {
    return this.requireHost().get();
  }
}

/** Whether the image's own KV or encoder output was reused (a reused system prompt alone is not a hit). */
function imageWasCached(r: ImageReuseOutcome): boolean {
  return r.kind !== 'cold';
}

/** Image files above this size are refused before they are read (the largest legal inputs are far smaller). */
const MAX_IMAGE_FILE_BYTES = 256 << 20;

/**
 * Reads an image when the request runs (not when it was queued), through one descriptor that
 * must be a regular file inside a workspace folder at that moment (engine/regular-file.ts).
 * @throws ResponseError InvalidImage when the file cannot be read, PathOutsideWorkspace when
 *   the file opened is no longer inside a workspace folder.
 */
function readImage(ref: string, path: string, roots: readonly string[]): ImageInput {
  try {
    return { name: path, bytes: readRegularFile(path, { roots, maxBytes: MAX_IMAGE_FILE_BYTES }) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EOUTSIDE') {
      throw new ResponseError<PathErrorData>(ErrorCodes.PathOutsideWorkspace,
        `${ref}: ${(e as Error).message}; only workspace images can be asked about`, { path: ref, resolved: path });
    }
    const why = code === 'ENOENT' ? 'no such image file; check the path'
      : e instanceof FileRefusedError ? e.message : `cannot read the image (${code})`;
    throw new ResponseError<PathErrorData>(ErrorCodes.InvalidImage, `${ref}: ${why}`, { path: ref, resolved: path });
  }
}
