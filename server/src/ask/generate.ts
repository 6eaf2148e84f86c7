/**
 * One question about images, end to end: preprocess, encode, build the prompt,
 * prefill, then decode with the KV kept where the model's device keeps it.
 */
import { performance } from 'node:perf_hooks';
import { ChatMessage, ChatTemplate, buildPrompt, userTurn } from '../engine/chat-template';
import { imageWorkers } from '../engine/image/isolate';
import { KvArena } from '../engine/kv-arena';
import { LayeredPast, Past, StepInput, VlModel } from '../engine/model';
import { Positions, ropePositions, selectPositions } from '../engine/positions';
import { Sampler, SamplingOptions, topLogits } from '../engine/sampler';
import { Tokenizer } from '../engine/tokenizer';
import { visionInputs } from '../engine/vision-inputs';
import { CACHEBLEND_DEFAULT_RATIO } from '../planner/cacheblend';
import { LayeredPlan, Mode, Plan, PromptLayout, planPrefill } from '../planner/plan';
import { CacheStats, EncodedImage, ReuseEngine, newStats } from './vlcache';
import { ImageReuseOutcome, imageReuseOutcome } from '../planner/image-reuse';

export interface ImageInput {
  /** For messages: a path or name. */
  readonly name: string;
  readonly bytes: Uint8Array;
}

export interface AskRequest {
  readonly images: readonly ImageInput[];
  readonly question: string;
  /** A system prompt (the template's default one when absent). */
  readonly system?: string;
  /** Earlier text turns of the conversation, before the images and question. */
  readonly history?: readonly ChatMessage[];
  readonly maxTokens?: number;
  readonly sampling?: SamplingOptions;
  /** Keep generating through end-of-sequence tokens (golden tests compare fixed lengths). */
  readonly ignoreEos?: boolean;
  /** Streams decoded text as it becomes complete UTF-8. */
  readonly onText?: (delta: string) => void;
  /** Checked between steps; generation stops and the partial answer is returned. */
  readonly signal?: AbortSignal;
  /** Caps the image area below the checkpoint's max_pixels (a user setting). */
  readonly maxPixels?: number;
  /** Receives each generated token id as it is chosen (before end-of-sequence handling). */
  readonly onToken?: (id: number) => void;
  /**
   * Receives the logits [vocab] each token is sampled from (fidelity and golden checks). With a KV
   * arena, setting it reads every step's logits row back from the device (otherwise only the token).
   */
  readonly onLogits?: (step: number, logits: Float32Array) => void;
  /**
   * Transparency handling: 'drop' (default) ignores alpha exactly as transformers' processor does
   * (Pillow `convert("RGB")`), so answers match Hugging Face; 'white' composites over white like qwen_vl_utils.
   */
  readonly alpha?: 'white' | 'drop';
  /** How cached KV is reused (default vlcache when the generator has a cache, else full). */
  readonly mode?: Mode;
  /** vlcache: recompute ratio r (0.05); cacheblend: recompute ratio r (0.15); epic: rows k per image (32). */
  readonly ratio?: number;
  readonly epicK?: number;
  /**
   * Receives the final prefill plan before the prefill runs, and for cacheblend the
   * probe's present K/V of layers 0-1 when a probe ran (diagnostics and tests).
   */
  readonly onPlan?: (info: { plan: Plan; probe?: Past; layered?: LayeredPlan }) => void;
  /**
   * vlcache: per-layer recompute ratios (non-increasing with depth, planner/schedule.ts)
   * instead of the uniform `ratio`. Used only on a model loaded `layered` with a reuse
   * engine; otherwise the uniform ratio applies.
   */
  readonly schedule?: readonly number[];
}

export interface Timings {
  preprocessMs: number;
  visionMs: number;
  prefillMs: number;
  ttftMs: number;
  decodeMs: number;
  decodeTokensPerS: number;
}

export interface AskResult {
  text: string;
  tokenIds: number[];
  promptTokenIds: number[];
  /** Top-10 [token id, logit] at the first generated position. */
  logitsTop: [number, number][];
  device: string;
  stopReason: 'eos' | 'length' | 'cancelled';
  cache: CacheStats;
  /** `reuse`: what the cache did for the image in this prefill (planner/image-reuse.ts). */
  images: { name: string; width: number; height: number; grid: readonly [number, number, number]; tokens: number; downscaled: boolean;
    reuse: ImageReuseOutcome }[];
  timings: Timings;
}

export class ContextExceededError extends Error {
  constructor(readonly nPromptTokens: number, readonly nCtx: number) {
    super(`the prompt is ${nPromptTokens} tokens but the model's context is ${nCtx}: ask about fewer or smaller images ` +
      '(lower the max image pixels setting) or use a shorter question');
    this.name = 'ContextExceededError';
  }
}

export class Generator {
  readonly tokenizer: Tokenizer;
  readonly template: ChatTemplate;

  constructor(readonly model: VlModel, log?: (line: string) => void, readonly reuse?: ReuseEngine) {
    const ckpt = model.checkpoint;
    this.tokenizer = new Tokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfig);
    this.template = ChatTemplate.create(ckpt.chatTemplate, ckpt.tokenizerConfig, log);
  }

  async ask(req: AskRequest): Promise<AskResult> {
    const ckpt = this.model.checkpoint;
    const cfg = ckpt.config;
    const t0 = performance.now();
    const mode = req.mode ?? (this.reuse ? 'vlcache' : 'full');
    const stats = newStats(mode);
    const alpha = req.alpha ?? 'drop';
    const preprocessId = JSON.stringify({ ...ckpt.preprocess, maxPixels: req.maxPixels ?? null, alpha });

    // 1-2. Per image: preprocess and encode, or take the encoder output from the cache.
    // Transparency is dropped by default, as transformers' processor does (Pillow convert("RGB"):
    // a transparent pixel shows the colour stored under it); compositing over white (qwen_vl_utils
    // `to_rgb`) changed RGBA screenshots' and tRNS palette PNGs' logits by ~2% (issue 13). Both are
    // bit-exact with Pillow (test/unit/image, test/golden).
    let preprocessMs = 0, visionMs = 0;
    const encoded: EncodedImage[] = [];
    const keys: string[] = [];
    for (const img of req.images) {
      const compute = async (): Promise<EncodedImage> => {
        const ta = performance.now();
        // In an image worker with a time budget (engine/image/isolate.ts): a huge or hostile file never blocks the daemon.
        const p = await imageWorkers().preprocess(img.bytes, ckpt.preprocess, { maxPixelsOverride: req.maxPixels, name: img.name, alpha });
        const tb = performance.now();
        let embeds: Float32Array;
        try {
          embeds = await this.model.encodeImage(visionInputs(cfg.vision, ckpt.preprocess, p.resized));
        } finally {
          imageWorkers().recycle(p.resized); // read by now (a host copy or a finished run): kept for the next image
        }
        preprocessMs += tb - ta;
        visionMs += performance.now() - tb;
        return { embeds, grid: [...p.gridThw] as [number, number, number],
          meta: { width: p.originalWidth, height: p.originalHeight, downscaled: p.downscaled } };
      };
      const key = this.reuse?.imageKey(img.bytes, preprocessId) ?? '';
      keys.push(key);
      encoded.push(this.reuse ? await this.reuse.encoder(key, stats, compute) : await compute());
    }
    const t2 = performance.now();

    // 3. Prompt: chat template, <|image_pad|> expansion, M-RoPE positions.
    const merge = cfg.vision.spatialMergeSize;
    const prompt = buildPrompt({
      template: this.template,
      tokenizer: this.tokenizer,
      messages: [...(req.system ? [{ role: 'system' as const, content: req.system }] : []), ...(req.history ?? []),
        userTurn(encoded.length, req.question)],
      imageGrids: encoded.map((e) => ({ gridT: e.grid[0], gridH: e.grid[1], gridW: e.grid[2] })),
      mergeSize: merge,
      imageTokenId: cfg.imageTokenId,
    });
    const ids = prompt.tokenIds;
    const n = ids.length;
    const maxTokens = req.maxTokens ?? 256;
    if (n + 1 > cfg.text.maxPositionEmbeddings) throw new ContextExceededError(n, cfg.text.maxPositionEmbeddings);
    const spans = encoded.map((e, i) => ({ row0: prompt.imageSpans[i].start, h: e.grid[1] / merge, w: e.grid[2] / merge }));
    const pos = ropePositions(n, spans);

    // 4. Prefill the rows the plan computes, given the reused ones.
    const layout: PromptLayout = {
      tokens: ids, images: prompt.imageSpans.map((sp, i) => ({ key: keys[i], start: sp.start, end: sp.end })),
    };
    const planOpts = { mode, ratio: req.ratio ?? (mode === 'cacheblend' ? CACHEBLEND_DEFAULT_RATIO : 0.05), epicK: req.epicK ?? 32 };
    // A layer-aware schedule: per-layer computed and given rows, run on the layered step graph.
    const scheduled = this.reuse && mode === 'vlcache' && req.schedule && this.model.layered
      ? this.reuse.planLayered(layout, req.schedule) : undefined;
    const draft = scheduled ? { plan: scheduled.layered.plan, symbols: scheduled.symbols, hits: scheduled.hits }
      : this.reuse ? this.reuse.plan(layout, planOpts)
      : { plan: planPrefill(layout, { rows: 0 }, () => false, planOpts), symbols: [], hits: new Map() };
    const { symbols, hits } = draft;
    let plan = draft.plan;
    const hidden = cfg.text.hiddenSize;
    let probed: Past | undefined;
    if (this.reuse && mode === 'cacheblend') {
      // CacheBlend's probe: layers 0-1 of every prompt row, fresh, no past (built only when it runs).
      const all = Array.from({ length: n }, (_, r) => r);
      plan = await this.reuse.cacheblend(layout, plan, hits, planOpts.ratio, stats, async () =>
        (probed = await this.model.probe({ ...rowsInput(all, ids, pos, layout, encoded, hidden), logitRows: [n - 1] })));
    }
    // An image reused at any layer of a schedule is not a miss.
    const commitPlan = scheduled ? scheduled.layered.draft : plan;
    req.onPlan?.({ plan, probe: probed, layered: scheduled?.layered });
    const tAssemble = performance.now();
    const rows = plan.computeRows;
    stats.tokensTotal = n;
    let first: { logits: Float32Array; present: Past | LayeredPast };
    if (scheduled) {
      const lp = scheduled.layered;
      const given = this.reuse!.layeredPast(lp, scheduled.hits, pos, stats);
      stats.assembleMs = performance.now() - tAssemble;
      stats.layerRowsComputed = lp.computeRows.map((r) => r.length);
      // Row-layers computed over row-layers in the prompt: the schedule's real work fraction.
      stats.tokensComputed = rows.length;
      stats.recomputeFraction = lp.computeRows.reduce((a, r) => a + r.length, 0) / (n * lp.computeRows.length);
      first = await this.model.stepLayered({
        ...rowsInput(rows, ids, pos, layout, encoded, hidden), past: given, keep: lp.keep,
        logitRows: [lp.computeRows[lp.computeRows.length - 1].length - 1],
      });
      VlModel.release(given);
    } else {
      const given = await this.reuse?.past(plan, hits, pos, stats);
      stats.assembleMs = performance.now() - tAssemble;
      stats.tokensComputed = rows.length;
      stats.recomputeFraction = rows.length / n;
      first = await this.model.step({
        ...rowsInput(rows, ids, pos, layout, encoded, hidden), past: given, logitRows: [rows.length - 1],
      });
      VlModel.release(given);
    }
    const t3 = performance.now();

    // 5. Decode.
    const sampler = new Sampler(req.sampling);
    const eos = new Set(cfg.eosTokenIds);
    const detok = this.tokenizer.streamDecoder();
    const out: number[] = [];
    // The row the next token is picked from; after an arena step only when onLogits asked for it.
    let logits: Float32Array | undefined = first.logits;
    // The next token when the arena's step picked it (on the device's argmax or top-K candidates).
    let picked: number | undefined;
    let past: Past | LayeredPast = first.present;
    let stop: AskResult['stopReason'] = 'length';
    let ttft = 0;
    const logitsTop = topLogits(first.logits, 10);
    let tDecode0 = 0;
    // A model loaded with kvArena decodes through a KV arena filled from the prefill (engine/kv-arena.ts);
    // `past` then stays the prompt's K/V, which is all the commit below stores. Layered prefills keep the step graph.
    let arena: KvArena | undefined;
    const useArena = this.model.kvArena !== undefined && !('index' in past);
    for (let i = 0; i < maxTokens; i++) {
      if (logits) req.onLogits?.(i, logits);
      const id = picked ?? sampler.next(logits!);
      req.onToken?.(id);
      if (i === 0) {
        ttft = performance.now() - t0;
        tDecode0 = performance.now();
      }
      if (eos.has(id) && !req.ignoreEos) {
        stop = 'eos';
        break;
      }
      out.push(id);
      const delta = detok.push(id);
      if (delta) req.onText?.(delta);
      if (i === maxTokens - 1) break;
      if (req.signal?.aborted) {
        stop = 'cancelled';
        break;
      }
      const row = n + i;
      if (row + 1 > cfg.text.maxPositionEmbeddings) break;
      const p = row + pos.ropeDelta;
      if (useArena) {
        arena ??= await KvArena.fromPrefill(this.model, past as Past,
          { capacity: this.model.kvArena?.capacity, maxCapacity: cfg.text.maxPositionEmbeddings });
        ({ token: picked, logits } = await arena.step(id, row, p, { sampler, logits: req.onLogits !== undefined }));
        continue;
      }
      // After a layered prefill each layer keeps its own row order: decode through stepLayered (every row kept).
      const next = 'index' in past
        ? await this.model.stepLayered({ inputIds: [id], rows: [row], positions: [p, p, p], past, logitRows: [0] })
        : await this.model.step({ inputIds: [id], rows: [row], positions: [p, p, p], past, logitRows: [0] });
      VlModel.release(past);
      past = next.present;
      logits = next.logits;
    }
    const tEnd = performance.now();
    arena?.dispose();
    // 6. Store new image KV and this prompt as a prefix (after the answer: not on the TTFT path).
    if (this.reuse) await this.reuse.commit(layout, symbols, commitPlan, past, stats);
    VlModel.release(past);
    const tail = detok.flush();
    if (tail) req.onText?.(tail);
    const decodeMs = tDecode0 ? tEnd - tDecode0 : 0;
    return {
      text: this.tokenizer.decode(out, { skipSpecialTokens: true }),
      tokenIds: out,
      promptTokenIds: ids,
      logitsTop: logitsTop,
      device: this.model.device,
      stopReason: stop,
      images: encoded.map((e, i) => ({
        name: req.images[i].name, width: Number(e.meta.width), height: Number(e.meta.height),
        grid: e.grid, tokens: e.embeds.length / hidden, downscaled: Boolean(e.meta.downscaled),
        reuse: imageReuseOutcome(layout.images[i], i, commitPlan, hits.get(keys[i])?.tier, e.tier),
      })),
      cache: stats,
      timings: {
        preprocessMs: preprocessMs,
        visionMs: visionMs,
        prefillMs: t3 - t2,
        ttftMs: ttft,
        decodeMs: decodeMs,
        decodeTokensPerS: out.length > 1 && decodeMs > 0 ? ((out.length - 1) * 1000) / decodeMs : 0,
      },
    };
  }
}

/**
 * The step input of prompt `rows` (ascending) without past or logit rows: their token
 * ids, positions, and the vision embeddings [nV, hidden] of their image rows, in row order.
 */
function rowsInput(rows: readonly number[], ids: readonly number[], pos: Positions, layout: PromptLayout,
  encoded: readonly EncodedImage[], hidden: number): Omit<StepInput, 'logitRows'> {
  const imageRowOf: number[] = [];
  const picked: Float32Array[] = [];
  for (const r of rows) {
    const i = layout.images.findIndex((sp) => r >= sp.start && r < sp.end);
    if (i < 0) { imageRowOf.push(-1); continue; }
    const j = r - layout.images[i].start;
    imageRowOf.push(picked.length);
    picked.push(encoded[i].embeds.subarray(j * hidden, (j + 1) * hidden));
  }
  return { inputIds: rows.map((r) => ids[r]), rows, positions: selectPositions(pos, rows), imageEmbeds: concatF32(picked), imageRowOf };
}

function concatF32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
