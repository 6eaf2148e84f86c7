/**
 * The engine's lifecycle for the daemon: the model, its cache store and generator are
 * loaded once, on the first request that needs them (a failed load is retried by the
 * next one), reported as `vlcache/status` loading → ready (or error), and unloaded on
 * idle release or shutdown.
 *
 * Invariant: `loaded` is set exactly while the load promise has resolved and the engine
 * has not been unloaded since.
 */
import { performance } from 'node:perf_hooks';
import type { VlModel } from './engine/model';
import { TieredStore } from './cache/store';
import { Generator } from './ask/generate';
import { loadModel } from './ask/load-model';
import type { LayerSchedule } from './planner/schedule';
import { reuseFor } from './ask/vlcache';
import type { ServerConfig } from './config';
import { ErrorCodes } from './protocol/errors';
import type { StatsResult } from './protocol/stats';
import type { StatusParams } from './protocol/status';

/** The loaded model and everything that depends on it. */
export interface Engine {
  model: VlModel;
  store: TieredStore;
  gen: Generator;
  schedule?: LayerSchedule;
}

export type ModelState = StatsResult['model'];

export class EngineHost {
  private current?: Promise<Engine>;
  private loadedEngine?: Engine;
  private modelState: ModelState;
  /** Encoder + image-KV lookups of the stores already unloaded (the hit rate spans them). */
  readonly releasedLookups = { hits: 0, misses: 0 };

  constructor(
    private readonly config: ServerConfig,
    modelPath: string,
    private readonly sendStatus: (p: StatusParams) => void,
    private readonly log: (m: string) => void,
  ) {
    this.modelState = { state: 'unloaded', path: modelPath, fallbackReasons: [] };
  }

  /** The engine, when loaded now (nothing is loaded for asking). */
  get loaded(): Engine | undefined {
    return this.loadedEngine;
  }

  /** Whether a load has started or finished (and no unload came since). */
  get active(): boolean {
    return this.current !== undefined;
  }

  get state(): ModelState {
    return { ...this.modelState, fallbackReasons: [...this.modelState.fallbackReasons] };
  }

  /** The engine, loading it first if needed. */
  get(): Promise<Engine> {
    this.current ??= this.load().then(
      (e) => { this.loadedEngine = e; return e; },
      (err) => {
        this.current = undefined;
        this.modelState = { ...this.modelState, state: 'failed' };
        this.sendStatus({ kind: 'error', message: (err as Error).message, code: ErrorCodes.ModelLoadFailed });
        throw err;
      });
    return this.current;
  }

  /** A fresh generator over the same model and store: forgets the exact-prefix index and the device tier. */
  async resetReuse(e: Engine): Promise<void> {
    await e.gen.reuse?.release();
    e.gen = newGenerator(e.model, e.store, this.log, this.config.ramBytes);
  }

  /**
   * Writes the cache out and frees the device KV and the model; the next `get` loads
   * them again. `released` marks the state as released for idleness (else unloaded).
   */
  async unload(released = false): Promise<void> {
    const e = await this.current?.catch(() => undefined);
    this.current = undefined;
    this.loadedEngine = undefined;
    if (released) this.modelState = { state: 'released', path: this.modelState.path, fallbackReasons: [] };
    if (!e) return;
    const s = e.store.stats();
    this.releasedLookups.hits += s.hits.encoder + s.hits.kv;
    this.releasedLookups.misses += s.misses.encoder + s.misses.kv;
    await e.store.close();
    await e.gen.reuse?.release();
    await e.model.dispose();
  }

  private async load(): Promise<Engine> {
    const cfg = this.config;
    const path = this.modelState.path;
    const t0 = performance.now();
    this.modelState = { ...this.modelState, state: 'loading' };
    this.sendStatus({ kind: 'loading', message: `reading the checkpoint ${path}`, percentage: 0 });
    const { model, schedule } = await loadModel(path, {
      device: cfg.device, precision: cfg.precision, kvArena: cfg.kvArena, kvArenaRows: cfg.kvArenaRows, log: this.log, reuse: { mode: cfg.mode, ratio: cfg.ratio },
      onCheckpoint: () => this.sendStatus({ kind: 'loading', message: `loading the model graphs (device ${cfg.device})`, percentage: 30 }),
    });
    const ckpt = model.checkpoint;
    this.sendStatus({ kind: 'loading', message: 'opening the workspace cache', percentage: 90 });
    const store = new TieredStore({ dir: cfg.cacheDir, modelFingerprint: ckpt.fingerprint, ramBytes: cfg.ramBytes,
      diskBytes: cfg.diskBytes, log: this.log });
    const loadMs = performance.now() - t0;
    this.modelState = { state: 'ready', path, device: model.device, fallbackReasons: [...model.fallbackReasons] };
    this.sendStatus({ kind: 'ready', device: model.device, modelPath: path, fallbackReasons: [...model.fallbackReasons], loadMs });
    return { model, store, gen: newGenerator(model, store, this.log, cfg.ramBytes), schedule };
  }
}

/**
 * NOTE: the exact-prefix cache holds prompt KV in the daemon's RAM, so it takes a quarter of the
 * RAM budget (512 MiB at the default 4 GiB), not a fixed 512 MiB: with a small budget the daemon
 * grew by ~0.6 MB per ask with new questions until it had filled 512 MiB (`vlcache soak --daemon`).
 */
function newGenerator(model: VlModel, store: TieredStore, log: (m: string) => void, ramBytes: number): Generator {
  return new Generator(model, log, reuseFor(model, store, { prefixBytes: Math.floor(ramBytes / 4) }));
}
