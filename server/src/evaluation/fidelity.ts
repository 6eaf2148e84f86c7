/**
 * The fidelity harness: the same image placed after different prefixes, each
 * reuse mode measured against full recomputation of the same prompt. Fidelity
 * is measured, never assumed (DESIGN.md section 4).
 *
 * For every variant, a fresh reuse engine is first warmed with the image in a
 * reference context (image first, default system prompt), so the image's KV in
 * the cache was computed under a different prefix than the variant's.
 */
import type { ChatMessage } from '../engine/chat-template';
import type { SamplingOptions } from '../engine/sampler';
import { AskRequest, AskResult, Generator, ImageInput } from '../ask/generate';
import type { Mode } from '../planner/plan';

export interface Variant {
  readonly name: string;
  /** Images before the subject image. */
  readonly before: readonly ImageInput[];
  readonly system?: string;
  readonly history?: readonly ChatMessage[];
  readonly question: string;
}

export interface ModeSpec {
  readonly label: string;
  readonly mode: Mode;
  readonly ratio?: number;
  readonly epicK?: number;
  /** vlcache: per-layer ratios (planner/schedule.ts; needs a model loaded layered). */
  readonly schedule?: readonly number[];
}

export interface FidelityRow {
  variant: string;
  mode: string;
  /** KL(p_full || p_mode) of the first generated token's distribution, nats. */
  first_token_kl: number;
  first_token_top1_agree: boolean;
  /** Leading greedy tokens equal to full's, out of `greedy_tokens`. */
  greedy_match: number;
  greedy_tokens: number;
  tokens_computed: number;
  tokens_total: number;
  /** Under a layer schedule: rows computed at each layer (tokens_computed is layer 0's). */
  layer_rows_computed?: number[];
  ttft_ms: number;
  /** full's TTFT (encoder cache warm) / this TTFT. */
  ttft_speedup: number;
}

export const LONG_SYSTEM = 'You are a meticulous software architect who reviews diagrams, screenshots and UI mockups. '
  + 'Answer precisely, name every component you see, describe how data flows between them, point out anything that '
  + 'looks inconsistent, and keep the answer short unless asked for detail. '.repeat(3);

export function defaultVariants(other: ImageInput): Variant[] {
  return [
    { name: 'short system prompt', before: [], system: 'You are a concise assistant.', question: 'What does this show?' },
    { name: 'long system prompt', before: [], system: LONG_SYSTEM, question: 'What does this show?' },
    { name: 'another image first', before: [other], question: 'What does the second image show?' },
    { name: 'earlier turns', before: [], question: 'And what does this show?', history: [
      { role: 'user', content: 'I am reviewing our service architecture.' },
      { role: 'assistant', content: 'Sure, send me the diagrams and I will go through them.' }] },
    { name: 'different question', before: [], question: 'Which boxes are connected?' },
  ];
}

export const DEFAULT_MODES: ModeSpec[] = [
  { label: 'prefix', mode: 'prefix' },
  { label: 'naive', mode: 'naive' },
  { label: 'epic-32', mode: 'epic', epicK: 32 },
  { label: 'vlcache r=0.02', mode: 'vlcache', ratio: 0.02 },
  { label: 'vlcache r=0.05', mode: 'vlcache', ratio: 0.05 },
  { label: 'vlcache r=0.1', mode: 'vlcache', ratio: 0.1 },
  // CacheBlend at the paper's recommended minimum ratio (planner/cacheblend.ts).
  { label: 'cacheblend r=0.15', mode: 'cacheblend', ratio: 0.15 },
];

export interface FidelityOptions {
  readonly image: ImageInput;
  readonly variants: readonly Variant[];
  readonly modes: readonly ModeSpec[];
  /** Greedy tokens compared per run (32). */
  readonly tokens?: number;
  /** A generator with an empty cache, made fresh for every run. */
  readonly newGenerator: () => Generator;
  readonly sampling?: SamplingOptions;
  readonly onRow?: (row: FidelityRow) => void;
}

export async function runFidelity(o: FidelityOptions): Promise<FidelityRow[]> {
  const nTok = o.tokens ?? 32;
  const rows: FidelityRow[] = [];
  for (const v of o.variants) {
    const request = (gen: Generator, extra: Partial<AskRequest>) => {
      let first = new Float32Array();
      return gen.ask({
        images: [...v.before, o.image], question: v.question, system: v.system, history: v.history,
        maxTokens: nTok, ignoreEos: true, onLogits: (s, l) => { if (s === 0) first = l.slice(); }, ...extra,
      }).then((res) => ({ res, first }));
    };
    const warm = async (): Promise<Generator> => {
      const gen = o.newGenerator();
      // The reference context: the subject image alone, first, with the default system prompt.
      await gen.ask({ images: [o.image], question: 'Describe the image.', maxTokens: 1, mode: 'full' });
      for (const b of v.before) await gen.ask({ images: [b], question: 'Describe the image.', maxTokens: 1, mode: 'full' });
      return gen;
    };
    const full = await request(await warm(), { mode: 'full' });
    for (const m of o.modes) {
      const run = await request(await warm(), { mode: m.mode, ratio: m.ratio, epicK: m.epicK, schedule: m.schedule });
      const row = compare(v.name, m.label, full, run, nTok);
      rows.push(row);
      o.onRow?.(row);
    }
  }
  return rows;
}

/** KL(softmax(full) || softmax(run)) in nats (>= 0) and whether the two argmaxes agree. */
export function firstTokenKl(full: Float32Array, run: Float32Array): { kl: number; top1Agree: boolean } {
  const p = softmax(full), q = softmax(run);
  let kl = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) kl += p[i] * (Math.log(p[i]) - Math.log(Math.max(q[i], 1e-30)));
  return { kl: Math.max(0, kl), top1Agree: argmax(full) === argmax(run) };
}

function compare(variant: string, mode: string, full: { res: AskResult; first: Float32Array }, run: { res: AskResult; first: Float32Array }, n: number): FidelityRow {
  const { kl, top1Agree } = firstTokenKl(full.first, run.first);
  let match = 0;
  while (match < n && full.res.tokenIds[match] === run.res.tokenIds[match]) match++;
  return {
    variant, mode, first_token_kl: kl, first_token_top1_agree: top1Agree,
    greedy_match: match, greedy_tokens: n, tokens_computed: run.res.cache.tokensComputed, tokens_total: run.res.cache.tokensTotal,
    ...(run.res.cache.layerRowsComputed ? { layer_rows_computed: run.res.cache.layerRowsComputed } : {}),
    ttft_ms: run.res.timings.ttftMs, ttft_speedup: full.res.timings.ttftMs / run.res.timings.ttftMs,
  };
}

function softmax(l: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of l) m = Math.max(m, v);
  const e = new Float64Array(l.length);
  let s = 0;
  for (let i = 0; i < l.length; i++) { e[i] = Math.exp(l[i] - m); s += e[i]; }
  for (let i = 0; i < l.length; i++) e[i] /= s;
  return e;
}

function argmax(v: Float32Array): number {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
  return b;
}
