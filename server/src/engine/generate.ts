/**
 * One question about images, end to end: preprocess, encode, build the prompt,
 * prefill, then decode with the KV kept where the model's device keeps it.
 */
import { performance } from 'node:perf_hooks';
import { ChatTemplate, buildPrompt, userTurn } from './chat-template';
import { preprocessImage } from './image/preprocess';
import { Past, VlModel } from './model';
import { ropePositions, selectPositions } from './positions';
import { Sampler, SamplingOptions, topLogits } from './sampler';
import { Tokenizer } from './tokenizer';
import { visionInputs } from './vision-inputs';

export interface ImageInput {
  /** For messages: a path or name. */
  readonly name: string;
  readonly bytes: Uint8Array;
}

export interface AskRequest {
  readonly images: readonly ImageInput[];
  readonly question: string;
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
  /** Receives the logits [vocab] each token is sampled from (fidelity and golden checks). */
  readonly onLogits?: (step: number, logits: Float32Array) => void;
  /** Transparency handling; 'white' (default) composites over white like qwen_vl_utils. */
  readonly alpha?: 'white' | 'drop';
}

export interface Timings {
  preprocess_ms: number;
  vision_ms: number;
  prefill_ms: number;
  ttft_ms: number;
  decode_ms: number;
  decode_tokens_per_s: number;
}

export interface AskResult {
  text: string;
  token_ids: number[];
  prompt_token_ids: number[];
  /** Top-10 [token id, logit] at the first generated position. */
  logits_top: [number, number][];
  device: string;
  stop_reason: 'eos' | 'length' | 'cancelled';
  images: { name: string; width: number; height: number; grid: readonly [number, number, number]; tokens: number; downscaled: boolean }[];
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

  constructor(readonly model: VlModel, log?: (line: string) => void) {
    const ckpt = model.checkpoint;
    this.tokenizer = new Tokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfig);
    this.template = ChatTemplate.create(ckpt.chatTemplate, ckpt.tokenizerConfig, log);
  }

  async ask(req: AskRequest): Promise<AskResult> {
    const ckpt = this.model.checkpoint;
    const cfg = ckpt.config;
    const t0 = performance.now();

    // 1. Preprocess every image.
    // NOTE: transparency is composited over white, as Qwen's own preprocessing (qwen_vl_utils
    // `to_rgb`) does; transformers' plain processor drops alpha instead, which turns transparent
    // screenshots black. Both are bit-exact with Pillow (test/unit/image, test/golden).
    const pre = req.images.map((img) =>
      preprocessImage(img.bytes, ckpt.preprocess, { maxPixelsOverride: req.maxPixels, name: img.name, alpha: req.alpha ?? 'white' }));
    const t1 = performance.now();

    // 2. Vision encoder, one run per image: [nTokens_i, hidden] each.
    const embeds: Float32Array[] = [];
    for (const p of pre) {
      embeds.push(await this.model.encodeImage(visionInputs(cfg.vision, p.pixelValues, p.gridThw[1], p.gridThw[2])));
    }
    const t2 = performance.now();

    // 3. Prompt: chat template, <|image_pad|> expansion, M-RoPE positions.
    const merge = cfg.vision.spatialMergeSize;
    const prompt = buildPrompt({
      template: this.template,
      tokenizer: this.tokenizer,
      messages: [userTurn(pre.length, req.question)],
      imageGrids: pre.map((p) => ({ gridT: p.gridThw[0], gridH: p.gridThw[1], gridW: p.gridThw[2] })),
      mergeSize: merge,
      imageTokenId: cfg.imageTokenId,
    });
    const ids = prompt.tokenIds;
    const n = ids.length;
    const maxTokens = req.maxTokens ?? 256;
    if (n + 1 > cfg.text.maxPositionEmbeddings) throw new ContextExceededError(n, cfg.text.maxPositionEmbeddings);
    const spans = pre.map((p, i) => ({ row0: prompt.imageSpans[i].start, h: p.gridThw[1] / merge, w: p.gridThw[2] / merge }));
    const pos = ropePositions(n, spans);

    // 4. Prefill every row.
    const rows = Array.from({ length: n }, (_, i) => i);
    const imageRowOf = new Array<number>(n).fill(-1);
    let k = 0;
    for (const { start, end } of prompt.imageSpans) for (let r = start; r < end; r++) imageRowOf[r] = k++;
    const allEmbeds = concatF32(embeds);
    const first = await this.model.step({
      inputIds: ids, rows, positions: selectPositions(pos, rows), imageEmbeds: allEmbeds, imageRowOf, logitRows: [n - 1],
    });
    const t3 = performance.now();

    // 5. Decode.
    const sampler = new Sampler(req.sampling);
    const eos = new Set(cfg.eosTokenIds);
    const detok = this.tokenizer.streamDecoder();
    const out: number[] = [];
    let logits = first.logits;
    let past: Past = first.present;
    let stop: AskResult['stop_reason'] = 'length';
    let ttft = 0;
    const logitsTop = topLogits(first.logits, 10);
    let tDecode0 = 0;
    for (let i = 0; i < maxTokens; i++) {
      req.onLogits?.(i, logits);
      const id = sampler.next(logits);
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
      const next = await this.model.step({ inputIds: [id], rows: [row], positions: [p, p, p], past, logitRows: [0] });
      VlModel.release(past);
      past = next.present;
      logits = next.logits;
    }
    VlModel.release(past);
    const tail = detok.flush();
    if (tail) req.onText?.(tail);
    const decodeMs = tDecode0 ? performance.now() - tDecode0 : 0;
    return {
      text: this.tokenizer.decode(out, { skipSpecialTokens: true }),
      token_ids: out,
      prompt_token_ids: ids,
      logits_top: logitsTop,
      device: this.model.device,
      stop_reason: stop,
      images: pre.map((p, i) => ({
        name: req.images[i].name, width: p.originalWidth, height: p.originalHeight,
        grid: p.gridThw, tokens: embeds[i].length / cfg.text.hiddenSize, downscaled: p.downscaled,
      })),
      timings: {
        preprocess_ms: t1 - t0,
        vision_ms: t2 - t1,
        prefill_ms: t3 - t2,
        ttft_ms: ttft,
        decode_ms: decodeMs,
        decode_tokens_per_s: out.length > 1 && decodeMs > 0 ? ((out.length - 1) * 1000) / decodeMs : 0,
      },
    };
  }
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
