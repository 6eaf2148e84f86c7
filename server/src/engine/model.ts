/**
 * A loaded vision-language model: the checkpoint, its generated graphs and
 * their sessions on one device. `encodeImage` runs the vision graph; `step`
 * runs the language model's selective-prefill/decode graph; `probe` runs the
 * first two decoder layers of that graph (CacheBlend's KV-deviation check).
 * A model loaded `layered` runs the layered step graph instead, which `stepLayered`
 * drives with per-layer rows and `step` with the same rows at every layer.
 */
import { buildArenaFillGraph, buildArenaGrowGraph, buildDecodeArenaGraph } from '../../../kernels/graphs/decode-arena';
import { StepGraphOptions, buildStepGraph } from '../../../kernels/graphs/llm';
import { buildVisionGraph } from '../../../kernels/graphs/vision';
import { ATTENTION_KINDS, type AttentionKind } from '../../../kernels/graphs/common';
import type { Checkpoint } from './checkpoint';
import { GraphFolder } from './graph-files';
import { DUMMY_ROW, LayeredPast, LayeredRun, LayeredStepInput, LayeredStepOutput, layeredIndexFeeds, planLayered, planUniform } from './layered';
import { assertFinite } from './finite';
import { ArenaPool } from './kv-arena';
import { Device, DeviceError, DeviceRequest, Session, Tensor, devicesToTry, f32, i32, u8, zeros } from './ort';
import type { Past, StepInput, StepOutput } from './step-io';
import { VisionInputs } from './vision-inputs';

export { DUMMY_ROW, layeredFrom, layerRows } from './layered';
export type { LayeredPast, LayeredStepInput, LayeredStepOutput } from './layered';
export type { Past, StepInput, StepOutput } from './step-io';

export type Precision = 'auto' | 'fp32' | 'fp16';
export { ATTENTION_KINDS, type AttentionKind };

export interface LoadOptions {
  readonly device?: DeviceRequest;
  readonly precision?: Precision;
  /** Attention implementation in the graphs (see kernels/graphs/common.ts). */
  readonly attention?: AttentionKind;
  /**
   * Build the layered step graph (kernels/graphs/llm-layered.ts) as the one LM session:
   * `stepLayered` then runs per-layer row subsets and given rows (VLCache's layer-aware
   * recomputation), and `step` runs through it unchanged (same rows at every layer).
   * The trade-off: 9 more nodes per decoder layer on every step, decode included (index
   * vectors, the per-layer causal mask, two row Gathers; ~22 fewer shared ones), i.e. more
   * small GPU dispatches; the uniform graph stays the default.
   */
  readonly layered?: boolean;
  /**
   * Decode through a KV arena (engine/kv-arena.ts: capacity-sized, updated in place, one
   * fixed-shape graph per token, captured as a CUDA graph) instead of the step graph.
   * `auto` (the default): on CUDA in float16 only, where it decodes ~9x faster (README, "KV arena");
   * on the CPU it is slower, on WebGPU it is not captured yet, and in float32 on CUDA its attention
   * (GroupQueryAttention, float16/bfloat16 kernels only) would run on the CPU. `on` = `{}`.
   */
  readonly kvArena?: ArenaSettings | 'auto' | 'on' | 'off';
  /** The arena's initial rows (a setting: `vlcache.gpu.kvArenaRows`); over ArenaSettings.capacity. */
  readonly kvArenaRows?: number;
  readonly log?: (message: string) => void;
}

export interface ArenaSettings {
  /** Initial rows (the arena doubles when full). */
  readonly capacity?: number;
  /** CUDA: capture the decode step as a CUDA graph and replay it every token (default on). */
  readonly graphCapture?: boolean;
}

/** The arena settings a model loaded on `device` in `dtype` decodes with (undefined: the step graph). */
export function arenaFor(
  setting: ArenaSettings | 'auto' | 'on' | 'off', device: Device, capacity?: number, dtype: 'float16' | 'float32' = 'float16',
): ArenaSettings | undefined {
  if (setting === 'off' || (setting === 'auto' && (device !== 'cuda' || dtype !== 'float16'))) return undefined;
  const s = typeof setting === 'string' ? {} : setting;
  return capacity === undefined ? s : { ...s, capacity };
}

/** The arena's graphs: the decode step, the prefill-to-arena fill and the growth (kernels/graphs/decode-arena.ts). */
export type ArenaGraph = 'decode-arena' | 'arena-fill' | 'arena-grow';

/** Decoder layers the probe graph computes: CacheBlend's check layer is layer 1. */
export const PROBE_LAYERS = 2;

export class VlModel {
  /** The probe session, created on first use (most requests never need it). */
  private probeSession?: Promise<Session>;
  /** The KV arena's sessions, created on first use. */
  private arenaSessions = new Map<string, Promise<Session>>();
  /** Set by `load` from LoadOptions.kvArena: decode through a KV arena. */
  kvArena?: ArenaSettings;
  /** The KV arena's held buffer sets, kept between sequences (native sessions). */
  readonly arenaPool = new ArenaPool();

  private constructor(
    readonly checkpoint: Checkpoint,
    readonly device: Device,
    readonly kvDtype: 'float32' | 'float16',
    private readonly vision: Session,
    private readonly llm: Session,
    /** Why a preferred device was skipped, when `auto` fell back. */
    readonly fallbackReasons: readonly string[],
    /** Where graphs are written and the step graph's build options, for graphs made later. */
    private readonly folder: GraphFolder,
    private readonly stepBuild: StepGraphOptions,
    /** Whether the LM session runs the layered step graph. */
    readonly layered: boolean,
  ) {}

  /**
   * Builds the graphs and opens sessions on the requested device (`auto`: the best that works).
   * @throws DeviceError when an explicitly requested device is unavailable.
   */
  static async load(ckpt: Checkpoint, opts: LoadOptions = {}): Promise<VlModel> {
    const folder = GraphFolder.open(ckpt.dir, ckpt.fingerprint, ckpt.weights);
    const { devices: candidates, skipped } = devicesToTry(opts.device ?? 'auto');
    const reasons: string[] = [...skipped];
    for (const device of candidates) {
      const fp16 = opts.precision === 'fp16' || (opts.precision !== 'fp32' && device !== 'cpu');
      // MultiHeadAttention is 4x faster than explicit attention on WebGPU (flash kernels; measured on an
      // H200, README); on the CPU both run at the same speed and the explicit form is the reference.
      const attention = opts.attention ?? (device === 'cpu' ? 'manual' : 'mha');
      const build = { computeDtype: fp16 ? 'float16' : 'float32', attention } as const;
      const stepBuild: StepGraphOptions = { ...build, withImages: true, withPast: true };
      const cfg = ckpt.config;
      const visionPath = folder.write(`vision-${build.computeDtype}`, buildVisionGraph(cfg.vision, folder.lookup, build));
      const layered = opts.layered ?? false;
      const llmPath = folder.write(`llm${layered ? '-layered' : ''}-${build.computeDtype}`,
        buildStepGraph(cfg.text, folder.lookup, { ...stepBuild, layered }));
      const presentNames = Array.from({ length: cfg.text.numLayers }, (_, l) => [`present_key.${l}`, `present_value.${l}`]).flat();
      try {
        const vision = await Session.create(visionPath, device);
        const llm = await Session.create(llmPath, device, { keepOnDevice: presentNames });
        const model = new VlModel(ckpt, device, build.computeDtype, vision, llm, reasons, folder, stepBuild, layered);
        model.kvArena = arenaFor(opts.kvArena ?? 'auto', device, opts.kvArenaRows, build.computeDtype);
        return model;
      } catch (e) {
        if (!(e instanceof DeviceError) || candidates.length === 1) throw e;
        reasons.push(`${device}: ${e.message.replace(/^the \S+ device is not available here: /, '')}`);
      }
    }
    throw new Error('no device could run the model'); // unreachable: cpu is always last
  }

  /**
   * Runs the vision encoder on one preprocessed image: [nTokens, hidden] float32.
   * @throws NonFiniteError (finite.ts) when an embedding is NaN or infinite.
   */
  async encodeImage(inputs: VisionInputs): Promise<Float32Array> {
    const feeds: Record<string, Tensor> = {
      pixels: u8(inputs.pixels.data, [inputs.pixels.height, inputs.pixels.width, 3]),
      rescale_divisor: f32(inputs.norm.divisor, [1, 1, 1, 1]),
      image_mean: f32(inputs.norm.mean, [1, 3, 1, 1]),
      image_std: f32(inputs.norm.std, [1, 3, 1, 1]),
      rope_angles: f32(inputs.ropeAngles, [inputs.nPatches, inputs.headDim / 2]),
    };
    if (inputs.windows) {
      const w = inputs.windows;
      feeds.win_gather = i32(w.gather, [w.gather.length]);
      feeds.win_mask = f32(w.mask, [w.nWin, 1, 1, w.winLen]);
      feeds.win_scatter = i32(w.scatter, [w.scatter.length]);
    }
    const out = await this.vision.run(feeds);
    const embeds = out.image_embeds.data as Float32Array;
    assertFinite(embeds, 'vision encoder', `image embeddings [${out.image_embeds.dims.join(', ')}]`);
    return embeds;
  }

  /**
   * One language-model run: computes `input.rows`, attends to them and to `input.past`.
   * @throws NonFiniteError (finite.ts) when a returned logit is NaN or infinite.
   */
  async step(input: StepInput): Promise<StepOutput> {
    const numLayers = this.checkpoint.config.text.numLayers;
    const past = input.past ?? this.dummyPast();
    let feeds: Record<string, Tensor>;
    if (this.layered) {
      // The same given rows at every layer and every row kept: the uniform step, in table indices.
      feeds = this.layeredFeeds(input, planUniform(numLayers, past, input), past.keys, past.values);
    } else {
      feeds = this.feeds(input, past, numLayers);
      feeds.logit_rows = i32(input.logitRows);
    }
    const out = await this.llm.run(feeds);
    return { logits: checkedLogits(out), present: presentOf(out, past, input, numLayers) };
  }

  /**
   * One run of the layered step graph (a model loaded `layered` only): layer 0 computes
   * `input.rows`, layer l >= 1 the subset `input.keep[l - 1]` of layer l-1's rows, and each
   * layer attends causally to its computed rows and to its own given rows of `input.past`.
   * Returns the logits of `logitRows` (indices into the last layer's rows) and per layer
   * the present K/V: its given rows (the dummy row where it had none), then its computed rows.
   */
  async stepLayered(input: LayeredStepInput): Promise<LayeredStepOutput> {
    if (!this.layered) throw new Error('stepLayered needs a model loaded with { layered: true }');
    const numLayers = this.checkpoint.config.text.numLayers;
    const run = planLayered(numLayers, input);
    const dummy = run.dummy.some(Boolean) ? this.dummyPast() : undefined;
    const keys = run.dummy.map((d, l) => (d ? dummy!.keys[l] : input.past!.keys[l]));
    const values = run.dummy.map((d, l) => (d ? dummy!.values[l] : input.past!.values[l]));
    const out = await this.llm.run(this.layeredFeeds(input, run, keys, values));
    const present: LayeredPast = {
      rows: run.rows, positions: run.positions,
      index: run.pastIndex.map((given, l) => [...given, ...run.computed[l]]),
      keys: keys.map((_, l) => out[`present_key.${l}`]),
      values: values.map((_, l) => out[`present_value.${l}`]),
    };
    return { logits: checkedLogits(out), present };
  }

  /** Feeds of the layered graph: embeddings of `input`, the index inputs of `run`, per-layer given K/V. */
  private layeredFeeds(input: StepInput | LayeredStepInput, run: LayeredRun,
    keys: readonly Tensor[], values: readonly Tensor[]): Record<string, Tensor> {
    const feeds = { ...this.embedFeeds(input), ...layeredIndexFeeds(run, input.logitRows) };
    keys.forEach((k, l) => { feeds[`past_key.${l}`] = k; });
    values.forEach((v, l) => { feeds[`past_value.${l}`] = v; });
    return feeds;
  }

  /**
   * The first min(PROBE_LAYERS, numLayers) decoder layers of `step` on the same input
   * (`logitRows` is ignored): their present K/V, given rows (the dummy first when there
   * was no past) then computed rows, exactly as `step` returns them for those layers.
   * CacheBlend runs it over every prompt row to compare fresh with cached KV at layer 1.
   * The tensors are host tensors (read them with `hostBytes`, which also serves device
   * tensors); the probe graph is built and its session opened on the first call.
   */
  async probe(input: StepInput): Promise<Past> {
    const layers = Math.min(PROBE_LAYERS, this.checkpoint.config.text.numLayers);
    if (!this.probeSession) {
      const bytes = buildStepGraph(this.checkpoint.config.text, this.folder.lookup,
        { ...this.stepBuild, maxLayers: layers, withLogits: false });
      const path = this.folder.write(`probe${layers}-${this.kvDtype}`, bytes);
      this.probeSession = Session.create(path, this.device);
      // A failed creation is not cached: the next call tries again.
      this.probeSession.catch(() => { this.probeSession = undefined; });
    }
    const session = await this.probeSession;
    const past = input.past ?? this.dummyPast();
    const out = await session.run(this.feeds(input, past, layers));
    return presentOf(out, past, input, layers);
  }

  /**
   * One run of a KV-arena graph (engine/kv-arena.ts drives it): `fetches` are outputs
   * written in place (the arena itself). The graph is built and its session opened on
   * first use, with the step graph's dtype and attention options.
   */
  async runArenaGraph(graph: ArenaGraph, feeds: Record<string, Tensor>, fetches?: Record<string, Tensor>, graphId?: number): Promise<Record<string, Tensor>> {
    return (await this.arenaSession(graph)).run(feeds, fetches, { graphId });
  }

  /**
   * A KV-arena graph's session, opened on first use. On CUDA in float16 the decode step is captured as
   * a CUDA graph unless `kvArena.graphCapture` is false (its buffers are then all held: kv-arena.ts).
   * In float32 it is not: GroupQueryAttention has no float32 CUDA kernel, so that node runs on the CPU,
   * and ONNX Runtime refuses to capture a graph that is not all on CUDA.
   */
  arenaSession(graph: ArenaGraph): Promise<Session> {
    const graphCapture = graph === 'decode-arena' && this.device === 'cuda' && this.kvDtype === 'float16'
      && this.kvArena?.graphCapture !== false;
    const key = `${graph}${graphCapture ? '+capture' : ''}`;
    let session = this.arenaSessions.get(key);
    if (!session) {
      const build = { 'decode-arena': buildDecodeArenaGraph, 'arena-fill': buildArenaFillGraph, 'arena-grow': buildArenaGrowGraph }[graph];
      const path = this.folder.write(`${graph}-${this.kvDtype}`, build(this.checkpoint.config.text, this.folder.lookup, this.stepBuild));
      // The fill and grow graphs make the arena itself: it stays on the device.
      const L = this.checkpoint.config.text.numLayers;
      const prefix = { 'decode-arena': '', 'arena-fill': 'arena_', 'arena-grow': 'grown_' }[graph];
      const keepOnDevice = prefix ? Array.from({ length: L }, (_, l) => [`${prefix}key.${l}`, `${prefix}value.${l}`]).flat() : [];
      const created = Session.create(path, this.device, { keepOnDevice, graphCapture });
      this.arenaSessions.set(key, created);
      // A failed creation is not cached: the next call tries again.
      created.catch(() => { this.arenaSessions.delete(key); });
      session = created;
    }
    return session;
  }

  /** Feeds shared by the step and probe graphs (all but `logit_rows`), past K/V of layers [0, layers). */
  private feeds(input: StepInput, past: Past, layers: number): Record<string, Tensor> {
    const nQ = input.rows.length;
    const feeds: Record<string, Tensor> = {
      ...this.embedFeeds(input),
      q_rows: i32(input.rows),
      q_positions: i32(input.positions, [3, nQ]),
      past_rows: i32(past.rows),
      past_positions: i32(past.positions, [3, past.rows.length]),
    };
    for (let l = 0; l < layers; l++) {
      feeds[`past_key.${l}`] = past.keys[l];
      feeds[`past_value.${l}`] = past.values[l];
    }
    return feeds;
  }

  /**
   * The embedding inputs of the computed rows (every step graph): input_ids, and
   * embed_source / image_embeds, where an image row points past the nQ token
   * embeddings into image_embeds (a one-row zero image when there is none).
   */
  private embedFeeds(input: Pick<StepInput, 'inputIds' | 'imageEmbeds' | 'imageRowOf'>): Record<string, Tensor> {
    const hidden = this.checkpoint.config.text.hiddenSize;
    const nQ = input.inputIds.length;
    const src: number[] = [];
    for (let i = 0; i < nQ; i++) {
      const j = input.imageRowOf?.[i] ?? -1;
      src.push(j < 0 ? i : nQ + j);
    }
    return {
      input_ids: i32(input.inputIds),
      embed_source: i32(src),
      image_embeds: input.imageEmbeds && input.imageEmbeds.length > 0
        ? f32(input.imageEmbeds, [input.imageEmbeds.length / hidden, hidden])
        : f32(new Float32Array(hidden), [1, hidden]),
    };
  }

  /** Releases device memory held by a Past's (or a LayeredPast's) tensors. */
  static release(past: Pick<Past, 'keys' | 'values'> | undefined): void {
    if (!past) return;
    for (const t of [...past.keys, ...past.values]) if (t.location !== 'cpu') t.dispose();
  }

  private dummyPast(): Past {
    const t = this.checkpoint.config.text;
    const kv = () => zeros(this.kvDtype, [1, t.numKvHeads, t.headDim]);
    return {
      rows: [DUMMY_ROW],
      positions: [0, 0, 0],
      keys: Array.from({ length: t.numLayers }, kv),
      values: Array.from({ length: t.numLayers }, kv),
    };
  }

  async dispose(): Promise<void> {
    await this.vision.dispose();
    await this.llm.dispose();
    const probe = await this.probeSession?.catch(() => undefined);
    this.probeSession = undefined;
    await probe?.dispose();
    this.arenaPool.clear(); // held buffers go before the sessions whose allocators made them
    const arena = [...this.arenaSessions.values()];
    this.arenaSessions.clear();
    for (const s of arena) await (await s.catch(() => undefined))?.dispose();
  }
}

/** The logits of an LM run, [logitRows, vocab]. @throws NonFiniteError on a NaN or infinity. */
function checkedLogits(out: Record<string, Tensor>): Float32Array {
  const logits = out.logits.data as Float32Array;
  assertFinite(logits, 'language model', `logits [${out.logits.dims.join(', ')}]`);
  return logits;
}

/** The present K/V of layers [0, layers) of a run as a Past: given rows, then computed rows. */
function presentOf(out: Record<string, Tensor>, past: Past, input: StepInput, layers: number): Past {
  const keys: Tensor[] = [], values: Tensor[] = [];
  for (let l = 0; l < layers; l++) {
    keys.push(out[`present_key.${l}`]);
    values.push(out[`present_value.${l}`]);
  }
  return { rows: [...past.rows, ...input.rows], positions: concatPositions(past.positions, input.positions), keys, values };
}

/** Concatenates two stream-major [3, n] position lists. */
function concatPositions(a: readonly number[], b: readonly number[]): number[] {
  const na = a.length / 3, nb = b.length / 3;
  const out: number[] = [];
  for (let s = 0; s < 3; s++) out.push(...a.slice(s * na, (s + 1) * na), ...b.slice(s * nb, (s + 1) * nb));
  return out;
}
