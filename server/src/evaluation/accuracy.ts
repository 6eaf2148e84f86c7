/**
 * Task accuracy of every reuse mode on the held-out synthetic set (test/reference/eval, made by
 * test/reference/synthetic.py): exact match of the greedy answer, with each question asked in a
 * different context than the one its image's KV was cached under (DESIGN.md section 4: fidelity
 * is measured, never assumed). Beside accuracy, per mode: first-token KL and top-1 agreement
 * against full recomputation of the same prompt, answers identical to full's, rows computed,
 * and TTFT against full's from the same runs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AskResult, Generator, ImageInput } from '../ask/generate';
import { LONG_SYSTEM, ModeSpec, Variant, firstTokenKl } from './fidelity';

/** One line of eval.jsonl. */
export interface EvalItem {
  readonly id: number;
  readonly image: string;
  readonly kind: string;
  readonly qtype: string;
  readonly question: string;
  readonly answer: string;
  /** The context the question is asked in (one of VARIANTS). */
  readonly variant: string;
}

export function loadEvalSet(dir: string): EvalItem[] {
  return readFileSync(join(dir, 'eval.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as EvalItem);
}

/** Exact match after trimming, lower-casing and dropping a final period ("Red." == "red"). */
export function exactMatch(text: string, answer: string): boolean {
  const norm = (s: string) => s.trim().replace(/\.$/, '').trim().toLowerCase();
  return norm(text) === norm(answer);
}

/** The contexts of synthetic.py EVAL_VARIANTS; `other` is the image placed first in "another image first". */
export function variantFor(item: EvalItem, other: ImageInput): Omit<Variant, 'question'> {
  switch (item.variant) {
    case 'short system prompt': return { name: item.variant, before: [], system: 'You are a concise assistant.' };
    case 'long system prompt': return { name: item.variant, before: [], system: LONG_SYSTEM };
    case 'another image first': return { name: item.variant, before: [other] };
    case 'earlier turns': return { name: item.variant, before: [], history: [
      { role: 'user', content: 'I am reviewing our service architecture.' },
      { role: 'assistant', content: 'Sure, send me the diagrams and I will go through them.' }] };
    default: throw new Error(`eval item ${item.id}: unknown variant '${item.variant}'`);
  }
}

export interface ItemResult {
  id: number;
  mode: string;
  variant: string;
  qtype: string;
  answer: string;
  text: string;
  correct: boolean;
  /** KL(p_full || p_mode) of the first answer token, nats (0 for full itself). */
  first_token_kl: number;
  top1_agree: boolean;
  /** The whole greedy answer (token ids) equals full's. */
  same_as_full: boolean;
  tokens_computed: number;
  tokens_total: number;
  ttft_ms: number;
  full_ttft_ms: number;
}

export interface ModeSummary {
  mode: string;
  n: number;
  accuracy: number;
  /** Accuracy per context variant. */
  by_variant: Record<string, number>;
  first_token_kl_mean: number;
  top1_agree: number;
  same_as_full: number;
  /** Mean fraction of prompt rows computed (layer 0's under a schedule). */
  rows_computed: number;
  ttft_ms_median: number;
  /** Median over items of full's TTFT / this mode's TTFT (same item, same context). */
  ttft_speedup_median: number;
}

export interface AccuracyOptions {
  readonly dir: string;
  readonly items: readonly EvalItem[];
  /** Modes besides full (full always runs first: it is the reference). */
  readonly modes: readonly ModeSpec[];
  /** A generator with an empty cache, made fresh for every run. */
  readonly newGenerator: () => Generator;
  readonly maxTokens?: number;
  readonly onItem?: (r: ItemResult) => void;
}

/**
 * For every item and mode: a fresh cache is warmed with the item's image alone (default system
 * prompt, first in the prompt) — and with the other image alone for "another image first" — then
 * the question is asked in the item's context, so reused image KV always comes from a different
 * prefix and position.
 */
export async function runAccuracy(o: AccuracyOptions): Promise<{ items: ItemResult[]; summary: ModeSummary[] }> {
  const maxTokens = o.maxTokens ?? 8;
  const image = (name: string): ImageInput => ({ name, bytes: readFileSync(join(o.dir, name)) });
  const results: ItemResult[] = [];
  for (let i = 0; i < o.items.length; i++) {
    const item = o.items[i];
    const subject = image(item.image);
    const v = variantFor(item, image(o.items[(i + 1) % o.items.length].image));
    const run = async (m: ModeSpec) => {
      const gen = o.newGenerator();
      await gen.ask({ images: [subject], question: 'Describe the image.', maxTokens: 1, mode: 'full' });
      for (const b of v.before) await gen.ask({ images: [b], question: 'Describe the image.', maxTokens: 1, mode: 'full' });
      let first = new Float32Array();
      const res: AskResult = await gen.ask({
        images: [...v.before, subject], question: item.question, system: v.system, history: v.history, maxTokens,
        mode: m.mode, ratio: m.ratio, epicK: m.epicK, schedule: m.schedule, onLogits: (s, l) => { if (s === 0) first = l.slice(); },
      });
      return { res, first };
    };
    const full = await run({ label: 'full', mode: 'full' });
    for (const m of [{ label: 'full', mode: 'full' } as ModeSpec, ...o.modes]) {
      const r = m.label === 'full' ? full : await run(m);
      const kl = firstTokenKl(full.first, r.first);
      const row: ItemResult = {
        id: item.id, mode: m.label, variant: item.variant, qtype: item.qtype, answer: item.answer, text: r.res.text,
        correct: exactMatch(r.res.text, item.answer), first_token_kl: kl.kl, top1_agree: kl.top1Agree,
        same_as_full: r.res.tokenIds.length === full.res.tokenIds.length && r.res.tokenIds.every((t, k) => t === full.res.tokenIds[k]),
        tokens_computed: r.res.cache.tokensComputed, tokens_total: r.res.cache.tokensTotal,
        ttft_ms: r.res.timings.ttftMs, full_ttft_ms: full.res.timings.ttftMs,
      };
      results.push(row);
      o.onItem?.(row);
    }
  }
  return { items: results, summary: summarize(results) };
}

export function summarize(results: readonly ItemResult[]): ModeSummary[] {
  const modes = [...new Set(results.map((r) => r.mode))];
  return modes.map((mode) => {
    const rs = results.filter((r) => r.mode === mode);
    const frac = (f: (r: ItemResult) => boolean, xs = rs) => xs.filter(f).length / Math.max(1, xs.length);
    const by_variant: Record<string, number> = {};
    for (const v of [...new Set(rs.map((r) => r.variant))]) by_variant[v] = frac((r) => r.correct, rs.filter((r) => r.variant === v));
    return {
      mode, n: rs.length, accuracy: frac((r) => r.correct), by_variant,
      first_token_kl_mean: rs.reduce((a, r) => a + r.first_token_kl, 0) / Math.max(1, rs.length),
      top1_agree: frac((r) => r.top1_agree), same_as_full: frac((r) => r.same_as_full),
      rows_computed: rs.reduce((a, r) => a + r.tokens_computed / r.tokens_total, 0) / Math.max(1, rs.length),
      ttft_ms_median: median(rs.map((r) => r.ttft_ms)),
      ttft_speedup_median: median(rs.map((r) => r.full_ttft_ms / r.ttft_ms)),
    };
  });
}

/**
 * A blind baseline ("chance"): answering every question with the most frequent answer of its
 * question type, that frequency taken on the eval set itself (so it can only overstate chance).
 */
export function majorityBaseline(items: readonly EvalItem[]): number {
  const byType = new Map<string, Map<string, number>>();
  for (const it of items) {
    const m = byType.get(it.qtype) ?? new Map<string, number>();
    m.set(it.answer.toLowerCase(), (m.get(it.answer.toLowerCase()) ?? 0) + 1);
    byType.set(it.qtype, m);
  }
  let hits = 0;
  for (const m of byType.values()) hits += Math.max(...m.values());
  return hits / Math.max(1, items.length);
}

/** Uniform guessing among the distinct answers each question type has in the set (also an upper bound on chance). */
export function uniformChance(items: readonly EvalItem[]): number {
  const answers = new Map<string, Set<string>>();
  for (const it of items) answers.set(it.qtype, (answers.get(it.qtype) ?? new Set()).add(it.answer.toLowerCase()));
  return items.reduce((a, it) => a + 1 / answers.get(it.qtype)!.size, 0) / Math.max(1, items.length);
}

function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
