/**
 * The reuse engine between the generator and the cache store: content keys,
 * the encoder cache, the exact-prefix index, VLCache plans turned into step
 * inputs, CacheBlend's probe-driven row selection, and writing new image KV
 * back after a request.
 *
 * Keys: an image's content key hashes the model fingerprint, the preprocessing
 * config, the pixel budget and alpha mode, and the image FILE bytes. Hashing the
 * file (not the decoded pixels) lets an encoder hit skip decoding and resizing
 * too; any changed pixel changes the bytes, so it is never a hit.
 */
import { createHash } from 'node:crypto';
import { tensorFloat32, type CacheEntry, type EntryTensor } from '../cache/entry';
import { cachedFloat32, reorder, tensorsByName } from './kv-bytes';
import { encoderEntryProblem, imageRows, kvEntryProblem, usable } from './entry-check';
import type { EntryStore } from '../cache/store';
import { DeviceTier, type DeviceEntry } from '../cache/device-tier';
import { performance } from 'node:perf_hooks';
import { LayeredPast, Past, VlModel, layerRows } from '../engine/model';
import { Tensor, f16, f32, hostBytes, toFloat32 } from '../engine/ort';
import { DeviceKv, DeviceKvEntry, KvChunk } from '../engine/kv-device';
import type { Positions } from '../engine/positions';
import { selectPositions } from '../engine/positions';
import { CHECK_LAYER, blendCount, rowDeviations, selectByDeviation } from '../planner/cacheblend';
import { ImageReuse, LayeredPlan, Mode, Plan, PlanOptions, PromptLayout, planLayeredPrefill, planPrefill, rowRuns, rowSymbols, withReuse } from '../planner/plan';
import { PrefixCache } from './prefix-cache';

/** Above this many bytes of unwritten disk entries, a request waits for the disk (bounded memory under load). */
const MAX_DISK_BACKLOG = 64 * 2 ** 20;

export interface ReuseOptions extends PlanOptions {
  readonly store?: EntryStore;
}

/** Image-KV look-ups of one plan: image key -> the hit (and its tier), or undefined. */
export type KvHits = Map<string, { entry: CacheEntry; tier: string } | undefined>;

/** Per-request cache statistics (`ask --json` writes them under `cache`, in snake_case: cli/json.ts). */
export interface CacheStats {
  mode: Mode;
  encoderHits: number;
  encoderMisses: number;
  kvHits: number;
  kvMisses: number;
  prefixTokensReused: number;
  imageTokensReused: number;
  /**
   * Rows the prefill computed. CacheBlend's probe (layers 0-1 of every prompt row) is
   * counted neither here nor in imageTokensReused: it is a different, cheaper kind
   * of work, and counting its rows would make tokensComputed exceed tokensTotal.
   * Its cost is `probeMs`.
   */
  tokensComputed: number;
  tokensTotal: number;
  recomputeFraction: number;
  /** cacheblend: time of the two-layer probe and the row selection (inside prefillMs); 0 otherwise. */
  probeMs: number;
  /** Host time to gather the reused rows' K/V into the step's given tensors (part of prefillMs). */
  assembleMs: number;
  /** Where each hit came from, e.g. ["encoder:ram", "kv:disk", "prefix:ram"]. */
  tier: string[];
  /**
   * Under a layer schedule: rows computed at each decoder layer (tokensComputed is layer 0's,
   * and recomputeFraction is then the mean over layers of computed rows / prompt rows).
   */
  layerRowsComputed?: number[];
}

export interface ModelShape {
  readonly fingerprint: string;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly kvDtype: 'float32' | 'float16';
}

/** The cache-relevant shape of a loaded model. */
export function modelShape(model: VlModel): ModelShape {
  const t = model.checkpoint.config.text;
  return { fingerprint: model.checkpoint.fingerprint, hiddenSize: t.hiddenSize, numLayers: t.numLayers,
    numKvHeads: t.numKvHeads, headDim: t.headDim, kvDtype: model.kvDtype };
}

/**
 * A reuse engine for `model` over `store`. On a GPU the device tier is on by default (reused
 * image KV stays on the device between requests); pass `deviceKv` to share one, or null for none.
 */
export function reuseFor(model: VlModel, store: EntryStore | undefined,
  o: { prefixBytes?: number; deviceKv?: DeviceKv | null } = {}): ReuseEngine {
  const shape = modelShape(model);
  const deviceKv = o.deviceKv === undefined
    ? (model.device === 'cpu' ? undefined : new DeviceKv(model.device, shape))
    : o.deviceKv ?? undefined;
  return new ReuseEngine(shape, store, o.prefixBytes, deviceKv);
}

/** A device-tier entry: an image's K/V on the device (the tier counts its bytes and releases it when it leaves). */
interface ImageKvOnDevice extends DeviceEntry {
  readonly kv: DeviceKvEntry;
}

/** The device tier's default budget (reused image KV kept on the GPU between requests). */
const DEVICE_BUDGET = 2 * 2 ** 30;

export interface EncodedImage {
  readonly embeds: Float32Array; // [nTokens, hidden]
  readonly grid: [number, number, number];
  readonly meta: Record<string, unknown>;
  readonly tier?: string;
}

const sha = (...parts: (string | Uint8Array)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

export class ReuseEngine {
  readonly prefixes: PrefixCache;
  /** Encoder computations in flight, so concurrent requests for one image compute it once. */
  private inflight = new Map<string, Promise<EncodedImage>>();

  /** Device tier (with `deviceKv` only): image key -> its K/V on the device, LRU within `deviceBudget`. */
  readonly deviceTier?: DeviceTier<ImageKvOnDevice>;

  constructor(readonly model: ModelShape, readonly store: EntryStore | undefined, prefixBytes = 512 * 2 ** 20,
    readonly deviceKv?: DeviceKv, deviceBudget = DEVICE_BUDGET) {
    this.prefixes = new PrefixCache(prefixBytes);
    if (deviceKv) this.deviceTier = new DeviceTier({ budgetBytes: deviceBudget, release: (e) => DeviceKv.dispose(e.kv) });
  }

  /**
   * Frees what this engine holds on the device (idle release, unload, a cache clear): the device tier's entries,
   * then the device graphs' sessions.
   */
  async release(): Promise<void> {
    this.deviceTier?.clear();
    await this.deviceKv?.dispose();
  }

  imageKey(bytes: Uint8Array, preprocessId: string): string {
    return sha('image\0', this.model.fingerprint, '\0', preprocessId, '\0', bytes);
  }

  /** The encoder output for an image key: from the cache, or computed once by `compute` and stored. */
  async encoder(key: string, stats: CacheStats, compute: () => Promise<EncodedImage>): Promise<EncodedImage> {
    const entryKey = sha('encoder\0', key);
    // An entry wrong for this model is a miss; the recomputed entry replaces it (entry-check.ts).
    const hit = usable(this.store?.get(entryKey, 'encoder'), (e) => encoderEntryProblem(e, this.model));
    if (hit && hit.entry.kind === 'encoder') {
      stats.encoderHits++;
      stats.tier.push(`encoder:${hit.tier}`);
      const t = hit.entry.tensors[0];
      return { embeds: tensorFloat32(t), grid: hit.entry.meta.grid as [number, number, number], meta: hit.entry.meta, tier: hit.tier };
    }
    stats.encoderMisses++;
    let p = this.inflight.get(entryKey);
    if (!p) {
      p = compute().then((enc) => {
        this.store?.put({
          key: entryKey, kind: 'encoder', modelFingerprint: this.model.fingerprint, meta: { ...enc.meta, grid: enc.grid },
          tensors: [{ name: 'embeds', dtype: 'float32', shape: [enc.embeds.length / this.model.hiddenSize, this.model.hiddenSize],
            data: new Uint8Array(enc.embeds.buffer, enc.embeds.byteOffset, enc.embeds.byteLength) }],
        });
        return enc;
      }).finally(() => this.inflight.delete(entryKey));
      this.inflight.set(entryKey, p);
    }
    return p;
  }

  /** Plans the prefill of `layout` under the request's mode. */
  plan(layout: PromptLayout, opts: PlanOptions): { plan: Plan; symbols: string[]; hits: KvHits } {
    const symbols = rowSymbols(layout);
    const best = opts.mode === 'full' ? undefined : this.prefixes.longest(symbols);
    // The first look-up of an entry says which tier served it (a disk hit is promoted to RAM).
    const hits: KvHits = new Map();
    const hasKv = (key: string) => {
      if (!hits.has(key)) hits.set(key, usable(this.store?.get(kvKey(key), 'kv'), (e) => kvEntryProblem(e, this.model, imageRows(layout.images, key))));
      return hits.get(key) !== undefined;
    };
    const exactAt = (key: string, start: number) => {
      const ctx = hits.get(key)?.entry.meta.context as { prefix_hash?: string; start?: number } | undefined;
      return ctx?.start === start && ctx.prefix_hash === sha(symbols.slice(0, start).join(' '));
    };
    const plan = planPrefill(layout, { id: best?.id, rows: best?.rows ?? 0 }, hasKv, opts, exactAt);
    return { plan, symbols, hits };
  }

  /** Plans a vlcache prefill of `layout` under per-layer ratios (planLayeredPrefill). */
  planLayered(layout: PromptLayout, ratios: readonly number[]): { layered: LayeredPlan; symbols: string[]; hits: KvHits } {
    const symbols = rowSymbols(layout);
    const best = this.prefixes.longest(symbols);
    const hits: KvHits = new Map();
    const hasKv = (key: string) => {
      if (!hits.has(key)) hits.set(key, usable(this.store?.get(kvKey(key), 'kv'), (e) => kvEntryProblem(e, this.model, imageRows(layout.images, key))));
      return hits.get(key) !== undefined;
    };
    const layered = planLayeredPrefill(layout, { id: best?.id, rows: best?.rows ?? 0 }, hasKv, ratios);
    return { layered, symbols, hits };
  }

  /**
   * The given rows of a layered plan as a LayeredPast: one table (the prefix rows and every
   * row some layer reuses, with their positions in this prompt), and per layer l its own given
   * rows (the prefix, then each image's rows reused at l) with K/V from the prefix entry and
   * the image entries' `k.<l>` / `v.<l>`. Undefined when no layer is given anything.
   * Stats count layer 0's reuse (the rows the step embeds).
   */
  layeredPast(lp: LayeredPlan, hits: KvHits, pos: Positions, stats: CacheStats): LayeredPast | undefined {
    const { numLayers: L, numKvHeads: KV, headDim: D, kvDtype } = this.model;
    if (lp.givenRows.length !== L) throw new Error(`a layer schedule of ${lp.givenRows.length} layers for a model of ${L}`);
    const rowBytes = KV * D * (kvDtype === 'float32' ? 4 : 2);
    const table = [...new Set(lp.givenRows.flat())].sort((a, b) => a - b);
    if (table.length === 0) return undefined;
    const indexOf = new Map(table.map((r, i) => [r, i]));
    const prefixRows = lp.draft.prefixRows;
    const seq = prefixRows > 0 && lp.draft.prefixId ? this.prefixes.get(lp.draft.prefixId)! : undefined;
    if (seq) {
      stats.tier.push('prefix:ram');
      stats.prefixTokensReused = prefixRows;
    }
    const entries = new Map<string, { k: Uint8Array[]; v: Uint8Array[] }>();
    for (const ru of lp.draft.reuse) {
      const hit = hits.get(ru.key)!;
      stats.kvHits++;
      stats.tier.push(`kv:${hit.tier}`);
      entries.set(ru.key, tensorsByName(hit.entry, kvDtype));
    }
    stats.imageTokensReused = lp.reuse[0].reduce((s, ru) => s + ru.rows.length, 0);
    const tensor = (bytes: Uint8Array) => kvDtype === 'float32'
      ? f32(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), [bytes.length / rowBytes, KV, D])
      : f16(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2), [bytes.length / rowBytes, KV, D]);
    const index: number[][] = [], keys: Tensor[] = [], values: Tensor[] = [];
    for (let l = 0; l < L; l++) {
      const rows: number[] = [];
      const k = new Uint8Array(lp.givenRows[l].length * rowBytes), v = new Uint8Array(k.length);
      let o = 0;
      if (seq) {
        k.set(seq.k[l].subarray(0, prefixRows * rowBytes), 0);
        v.set(seq.v[l].subarray(0, prefixRows * rowBytes), 0);
        o = prefixRows * rowBytes;
        for (let r = 0; r < prefixRows; r++) rows.push(r);
      }
      for (const ru of lp.reuse[l]) {
        const t = entries.get(ru.key)!;
        for (const [r0, r1] of rowRuns(ru.rows)) {
          const a = (r0 - ru.start) * rowBytes, b = (r1 - ru.start) * rowBytes;
          k.set(t.k[l].subarray(a, b), o);
          v.set(t.v[l].subarray(a, b), o);
          o += b - a;
        }
        rows.push(...ru.rows);
      }
      index.push(rows.map((r) => indexOf.get(r)!));
      keys.push(tensor(k));
      values.push(tensor(v));
    }
    return { rows: table, positions: selectPositions(pos, table), index, keys, values };
  }

  /**
   * The given rows of a plan as a Past: the exact prefix, then each image's reused rows,
   * with their positions in this prompt. Undefined when nothing is reused. Reused rows
   * are copied run by run (row-major, so a run of consecutive rows is one byte range):
   * a contiguous tail is a single copy, a cacheblend set one copy per run.
   */
  async past(plan: Plan, hits: KvHits, pos: Positions, stats: CacheStats): Promise<Past | undefined> {
    const { numLayers: L, numKvHeads: KV, headDim: D, kvDtype } = this.model;
    const rowBytes = KV * D * (kvDtype === 'float32' ? 4 : 2);
    const rows: number[] = [];
    const chunks: { k: Uint8Array[]; v: Uint8Array[] }[] = [];
    if (plan.prefixRows > 0 && plan.prefixId) {
      const seq = this.prefixes.get(plan.prefixId)!;
      stats.tier.push('prefix:ram');
      stats.prefixTokensReused = plan.prefixRows;
      for (let r = 0; r < plan.prefixRows; r++) rows.push(r);
      chunks.push({ k: seq.k.map((b) => b.subarray(0, plan.prefixRows * rowBytes)), v: seq.v.map((b) => b.subarray(0, plan.prefixRows * rowBytes)) });
    }
    for (const ru of plan.reuse) {
      const hit = hits.get(ru.key)!;
      stats.kvHits++;
      stats.tier.push(this.deviceTier?.has(ru.key) ? 'kv:device' : `kv:${hit.tier}`);
      stats.imageTokensReused += ru.rows.length;
      const t = tensorsByName(hit.entry, kvDtype);
      for (const [r0, r1] of rowRuns(ru.rows)) {
        const a = (r0 - ru.start) * rowBytes, b = (r1 - ru.start) * rowBytes;
        chunks.push({ k: t.k.map((x) => x.subarray(a, b)), v: t.v.map((x) => x.subarray(a, b)) });
      }
      rows.push(...ru.rows);
    }
    if (rows.length === 0) return undefined;
    if (this.deviceKv) return this.pastOnDevice(plan, hits, pos, rows, chunks);
    const join = (parts: Uint8Array[]) => {
      const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
      let o = 0;
      for (const p of parts) { out.set(p, o); o += p.length; }
      return out;
    };
    const tensor = (bytes: Uint8Array) => kvDtype === 'float32'
      ? f32(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), [bytes.length / rowBytes, KV, D])
      : f16(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2), [bytes.length / rowBytes, KV, D]);
    const keys: Tensor[] = [], values: Tensor[] = [];
    for (let l = 0; l < L; l++) {
      keys.push(tensor(join(chunks.map((c) => c.k[l]))));
      values.push(tensor(join(chunks.map((c) => c.v[l]))));
    }
    return { rows, positions: selectPositions(pos, rows), keys, values };
  }

  /**
   * Puts the K/V of every image computed whole by this request into the device tier,
   * sliced on the GPU from the present (no download, no upload), so that even the first
   * reuse of an image finds it there. Runs after the answer, off the TTFT path.
   */
  private async keepOnDevice(layout: PromptLayout, plan: Plan, present: Past, where: Int32Array): Promise<void> {
    const reused = new Set(plan.reuse.map((r) => r.image));
    for (const [i, img] of layout.images.entries()) {
      if (reused.has(i) || img.start < plan.prefixRows || this.deviceTier!.has(img.key)) continue;
      const r0 = where[img.start], r1 = where[img.end - 1] + 1;
      // Precondition for a single slice: the image's rows sit contiguously, in order, in the present.
      if (r0 < 0 || r1 - r0 !== img.end - img.start) continue;
      const whole = { keys: present.keys, values: present.values, rows: present.rows.length, bytes: 0 };
      const { keys, values } = await this.deviceKv!.assemble([{ kind: 'device', entry: whole, r0, r1 }]);
      this.keep(img.key, { keys, values, rows: r1 - r0, bytes: 2 * this.model.numLayers * (r1 - r0) * this.rowBytes });
    }
  }

  /** Puts an image's K/V into the device tier; one the tier refuses (over its whole budget) is freed here. */
  private keep(key: string, kv: DeviceKvEntry): void {
    this.deviceTier!.put({ key, kind: 'kv', bytes: kv.bytes, kv });
    if (!this.deviceTier!.has(key)) DeviceKv.dispose(kv);
  }

  private get rowBytes(): number {
    return this.model.numKvHeads * this.model.headDim * (this.model.kvDtype === 'float32' ? 4 : 2);
  }

  /**
   * The device-tier variant of `past`: reused image rows are sliced from the image's K/V
   * kept on the GPU (uploaded once per image and process), the exact prefix comes from
   * the host, and the chunks are concatenated on the device. Uploads join the tier only after the
   * assembly, so that making room for one cannot free another this request is reading.
   */
  private async pastOnDevice(plan: Plan, hits: KvHits, pos: Positions, rows: number[],
    hostChunks: { k: Uint8Array[]; v: Uint8Array[] }[]): Promise<Past> {
    const dev = this.deviceKv!;
    const chunks: KvChunk[] = [];
    if (plan.prefixRows > 0 && plan.prefixId) {
      chunks.push({ kind: 'host', k: hostChunks[0].k, v: hostChunks[0].v, rows: plan.prefixRows });
    }
    const uploaded = new Map<string, DeviceKvEntry>();
    for (const ru of plan.reuse) {
      let entry = this.deviceTier!.get(ru.key)?.kv ?? uploaded.get(ru.key);
      if (!entry) {
        const t = tensorsByName(hits.get(ru.key)!.entry, this.model.kvDtype);
        entry = await dev.upload(t.k, t.v);
        uploaded.set(ru.key, entry);
      }
      for (const [r0, r1] of rowRuns(ru.rows)) chunks.push({ kind: 'device', entry, r0: r0 - ru.start, r1: r1 - ru.start });
    }
    let assembled;
    try {
      assembled = await dev.assemble(chunks);
    } finally {
      for (const [key, kv] of uploaded) this.keep(key, kv);
    }
    const { keys, values } = assembled;
    return { rows, positions: selectPositions(pos, rows), keys, values };
  }

  /**
   * CacheBlend's final plan from a draft planned in mode cacheblend (every row of each
   * hit image reused): per image, the ceil(ratio * nImg) reused rows whose layer-1 V
   * deviates most between a fresh computation and the cached entry are recomputed
   * (at every layer), the rest stay reused. `probe` computes layers 0-1 of every prompt
   * row with no past (VlModel.probe); it runs only when some image needs a choice (not
   * at ratio 0 or when every candidate row is recomputed anyway). Sets stats.probeMs.
   */
  async cacheblend(layout: PromptLayout, draft: Plan, hits: KvHits, ratio: number, stats: CacheStats,
    probe: () => Promise<Past>): Promise<Plan> {
    const t0 = performance.now();
    const counts = draft.reuse.map((ru) => {
      const img = layout.images[ru.image];
      return Math.min(ru.rows.length, blendCount(ratio, img.end - img.start));
    });
    if (counts.every((c, i) => c === 0 || c === draft.reuse[i].rows.length)) {
      return withReuse(draft, layout.tokens.length, draft.reuse.map((ru, i) => counts[i] === 0 ? ru : { ...ru, rows: [] }));
    }
    const fresh = await probe();
    try {
      const check = Math.min(CHECK_LAYER, fresh.values.length - 1);
      const freshV = await toFloat32(fresh.values[check]); // [nP + n, KV, D], the probe's rows order
      const where = new Map<number, number>();
      fresh.rows.forEach((r, i) => where.set(r, i));
      const width = this.model.numKvHeads * this.model.headDim;
      const reuse: ImageReuse[] = draft.reuse.map((ru, i) => {
        if (counts[i] === 0) return ru;
        if (counts[i] === ru.rows.length) return { ...ru, rows: [] };
        const cachedV = cachedFloat32(hits.get(ru.key)!.entry, `v.${check}`); // [nImg, KV, D]
        const dev = rowDeviations(freshV, ru.rows.map((r) => where.get(r)!), cachedV, ru.rows.map((r) => r - ru.start), width);
        const recompute = new Set(selectByDeviation(dev, counts[i]).map((j) => ru.rows[j]));
        return { ...ru, rows: ru.rows.filter((r) => !recompute.has(r)) };
      });
      return withReuse(draft, layout.tokens.length, reuse);
    } finally {
      VlModel.release(fresh);
      stats.probeMs = performance.now() - t0;
    }
  }

  /**
   * After a request: stores the KV of every image whose rows were all computed here
   * (a miss), and the whole prompt as an exact prefix. `present` holds every prompt row.
   */
  async commit(layout: PromptLayout, symbols: string[], plan: Plan, present: Past | LayeredPast, stats: CacheStats): Promise<void> {
    const { numLayers: L, numKvHeads: KV, headDim: D, kvDtype } = this.model;
    const rowBytes = KV * D * (kvDtype === 'float32' ? 4 : 2);
    const n = layout.tokens.length;
    // Row r of the prompt sits at index where[r] of the present (of each layer's own rows when layered).
    const whereOf = (rows: readonly number[]) => {
      const where = new Int32Array(n).fill(-1);
      rows.forEach((r, i) => { if (r < n) where[r] = i; });
      return where;
    };
    const uniformWhere = 'index' in present ? undefined : whereOf(present.rows);
    const k: Uint8Array[] = [], v: Uint8Array[] = [];
    for (let l = 0; l < L; l++) {
      const where = uniformWhere ?? whereOf(layerRows(present as LayeredPast, l));
      k.push(reorder(await hostBytes(present.keys[l]), where, rowBytes));
      v.push(reorder(await hostBytes(present.values[l]), where, rowBytes));
    }
    this.prefixes.put(sha('seq\0', symbols.join(' ')), symbols, k, v);
    if (this.deviceKv && uniformWhere) await this.keepOnDevice(layout, plan, present as Past, uniformWhere);
    if (!this.store) return;
    const reusedImages = new Set(plan.reuse.map((r) => r.image));
    layout.images.forEach((img, i) => {
      if (reusedImages.has(i) || img.start < plan.prefixRows) return;
      const key = kvKey(img.key);
      if (this.store!.has(key)) return;
      stats.kvMisses++;
      const a = img.start * rowBytes, b = img.end * rowBytes;
      const tensors: EntryTensor[] = [];
      for (let l = 0; l < L; l++) {
        tensors.push({ name: `k.${l}`, dtype: kvDtype, shape: [img.end - img.start, KV, D], data: k[l].slice(a, b) });
        tensors.push({ name: `v.${l}`, dtype: kvDtype, shape: [img.end - img.start, KV, D], data: v[l].slice(a, b) });
      }
      this.store!.put({
        key: kvKey(img.key), kind: 'kv', modelFingerprint: this.model.fingerprint, tensors,
        meta: { rows: img.end - img.start, layers: L, kv_dtype: kvDtype, context: { prefix_hash: sha(symbols.slice(0, img.start).join(' ')), start: img.start } },
      });
    });
    // Back-pressure: writes run behind requests; never let the unwritten backlog grow without bound.
    if (this.store.backlogBytes() > MAX_DISK_BACKLOG) await this.store.flush();
  }
}

export function newStats(mode: Mode): CacheStats {
  return { mode, encoderHits: 0, encoderMisses: 0, kvHits: 0, kvMisses: 0, prefixTokensReused: 0,
    imageTokensReused: 0, tokensComputed: 0, tokensTotal: 0, recomputeFraction: 1, probeMs: 0, assembleMs: 0, tier: [] };
}

const kvKey = (imageKey: string) => sha('kv\0', imageKey);
