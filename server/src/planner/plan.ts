/**
 * The compute plan of one prefill: which rows are reused from an exact cached
 * prefix, which rows of later images are reused from their image-KV entries
 * (the VLCache case), and which rows are computed. Pure bookkeeping: no tensors,
 * no engine, exact and CPU-testable.
 */

/**
 * How cached KV may be reused (DESIGN.md section 4). `cacheblend` (CacheBlend,
 * EuroSys'25) recomputes the rows of each reused image whose layer-1 KV deviates
 * most from a fresh computation (planner/cacheblend.ts); the others recompute a
 * fixed set of leading rows (none for naive, k for epic, a ratio for vlcache).
 */
export type Mode = 'full' | 'prefix' | 'naive' | 'epic' | 'vlcache' | 'cacheblend';
export const MODES: readonly Mode[] = ['full', 'prefix', 'naive', 'epic', 'vlcache', 'cacheblend'];

export interface ImageSpan {
  /** Content key of the image (encoder and KV caches). */
  readonly key: string;
  /** Rows [start, end) of the prompt hold its tokens. */
  readonly start: number;
  readonly end: number;
}

/** A prompt as the planner sees it: token ids per row and the image spans. */
export interface PromptLayout {
  readonly tokens: readonly number[];
  readonly images: readonly ImageSpan[];
}

export interface PlanOptions {
  readonly mode: Mode;
  /**
   * vlcache: fraction of each reused image's leading rows to recompute (0.05);
   * cacheblend: fraction of its highest-deviation rows to recompute (0.15).
   */
  readonly ratio: number;
  /** epic: leading rows recomputed per reused image (EPIC/LegoLink-k, MPIC-k). */
  readonly epicK: number;
}

export interface ImageReuse {
  readonly image: number;
  readonly key: string;
  /** The image's first prompt row: prompt row r takes K/V from the entry's row r - start. */
  readonly start: number;
  /**
   * Prompt rows that take their K/V from the image entry, ascending and never empty.
   * One contiguous range (the image's tail) in every mode but cacheblend.
   */
  readonly rows: readonly number[];
}

export interface Plan {
  /** Rows [0, prefixRows) come from the cached sequence `prefixId` unchanged. */
  readonly prefixRows: number;
  readonly prefixId?: string;
  readonly reuse: readonly ImageReuse[];
  /** Rows computed by this prefill, ascending. Never empty: the last row is always computed. */
  readonly computeRows: readonly number[];
}

/**
 * Symbol of each row for exact-prefix matching: text rows by token id, image rows
 * by image key and index inside the image (so the same image at the same place matches).
 */
export function rowSymbols(p: PromptLayout): string[] {
  const out = p.tokens.map((t) => `t${t}`);
  for (const img of p.images) for (let r = img.start; r < img.end; r++) out[r] = `i${img.key}:${r - img.start}`;
  return out;
}

/** Length of the common prefix of two symbol lists. */
export function commonPrefix(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Leading rows VLCache recomputes of an image of nImg rows: max(1, floor(r * nImg)),
 * except r = 0, which reuses every row (so r = 0 is exactly `naive`).
 */
export function vlcacheHead(ratio: number, nImg: number): number {
  return ratio <= 0 ? 0 : Math.min(nImg, Math.max(1, Math.floor(ratio * nImg)));
}

/**
 * Plans one prefill.
 * @param prefix the longest cached exact prefix: its id and length in rows (0 for none).
 * @param hasImageKv whether the image-KV cache holds an entry for a key.
 */
export function planPrefill(
  p: PromptLayout,
  prefix: { id?: string; rows: number },
  hasImageKv: (key: string) => boolean,
  opts: PlanOptions,
  exactAt: (key: string, start: number) => boolean = () => false,
): Plan {
  const n = p.tokens.length;
  // Precondition: spans sorted, disjoint and inside the prompt.
  let prefixRows = opts.mode === 'full' ? 0 : Math.min(prefix.rows, n - 1);
  // Never split an image: its rows are reused whole or not from the prefix.
  for (const img of p.images) if (img.start < prefixRows && prefixRows < img.end) prefixRows = img.start;

  const reuse: ImageReuse[] = [];
  if (opts.mode !== 'full' && opts.mode !== 'prefix') {
    p.images.forEach((img, i) => {
      if (img.start < prefixRows || !hasImageKv(img.key)) return;
      const nImg = img.end - img.start;
      // cacheblend's draft reuses the whole image, like naive: the probe then picks the rows to recompute.
      // An entry computed after exactly this prefix at exactly this place is the full computation's
      // KV: reusing every row is lossless (the common case after a restart, when the RAM-only
      // exact-prefix index is empty).
      const head = opts.mode === 'naive' || opts.mode === 'cacheblend' || exactAt(img.key, img.start) ? 0
        : opts.mode === 'epic' ? Math.min(opts.epicK, nImg)
        : vlcacheHead(opts.ratio, nImg);
      // The prompt's last row is always computed (its logits are the answer's first token).
      const r1 = Math.min(img.end, n - 1);
      if (img.start + head < r1) reuse.push({ image: i, key: img.key, start: img.start, rows: range(img.start + head, r1) });
    });
  }
  return withReuse({ prefixRows, prefixId: prefixRows > 0 ? prefix.id : undefined, reuse, computeRows: [] }, n);
}

/**
 * `plan` with its reuse sets replaced by `reuse` (empty sets dropped) and its computed
 * rows derived from them: every row from prefixRows on that no image reuses, so text
 * rows and the last row (never in a reuse set) are always computed. `n`: prompt rows.
 */
export function withReuse(plan: Plan, n: number, reuse: readonly ImageReuse[] = plan.reuse): Plan {
  const kept = reuse.filter((r) => r.rows.length > 0);
  const reused = new Uint8Array(n);
  for (const r of kept) for (const row of r.rows) reused[row] = 1;
  const computeRows: number[] = [];
  for (let r = plan.prefixRows; r < n; r++) if (!reused[r]) computeRows.push(r);
  return { ...plan, reuse: kept, computeRows };
}

/** Maximal runs [r0, r1) of consecutive values of ascending `rows`: one run for a contiguous range. */
export function rowRuns(rows: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const r of rows) {
    const last = runs[runs.length - 1];
    if (last && last[1] === r) last[1] = r + 1;
    else runs.push([r, r + 1]);
  }
  return runs;
}

function range(a: number, b: number): number[] {
  return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
}

/**
 * A prefill under a layer-aware schedule: per decoder layer, its computed rows (nested:
 * layer l's are a subset of layer l-1's) and its given rows (the exact prefix, then each
 * reused image's rows [start + R_l, end) with R_l = vlcacheHead(ratios[l], nImg)).
 */
export interface LayeredPlan {
  /** Layer 0's plan (its computed rows are the rows the step embeds; stats and commit use it). */
  readonly plan: Plan;
  /** The prefix rows and every image that has a KV hit outside the prefix, each with all its reusable rows. */
  readonly draft: Plan;
  /** Per layer: the image reuse sets at that layer (empty ones dropped). */
  readonly reuse: readonly (readonly ImageReuse[])[];
  /** Per layer: computed rows, ascending. */
  readonly computeRows: readonly (readonly number[])[];
  /** Per layer: given rows, ascending (prefix rows, then the reused image rows). */
  readonly givenRows: readonly (readonly number[])[];
  /** keep[l - 1] for l >= 1: indices into computeRows[l - 1] of computeRows[l] (stepLayered's keep). */
  readonly keep: readonly (readonly number[])[];
}

/**
 * Plans a vlcache prefill under per-layer ratios (non-increasing with depth, one per
 * layer). Uniform ratios r give, at every layer, exactly `planPrefill` in mode vlcache at r.
 * @throws when the ratios increase with depth (the computed rows would not be nested).
 */
export function planLayeredPrefill(
  p: PromptLayout,
  prefix: { id?: string; rows: number },
  hasImageKv: (key: string) => boolean,
  ratios: readonly number[],
): LayeredPlan {
  for (let l = 1; l < ratios.length; l++) {
    if (ratios[l] > ratios[l - 1]) throw new Error(`layer ratios must not increase with depth (layer ${l}: ${ratios[l]} > ${ratios[l - 1]})`);
  }
  const n = p.tokens.length;
  // naive reuses every row of each hit image outside the prefix: the largest reuse set of any layer.
  const draft = planPrefill(p, prefix, hasImageKv, { mode: 'naive', ratio: 0, epicK: 0 });
  const reuse = ratios.map((r) => draft.reuse.map((ru) => {
    const img = p.images[ru.image];
    const head = vlcacheHead(r, img.end - img.start);
    return { ...ru, rows: ru.rows.filter((row) => row >= img.start + head) };
  }).filter((ru) => ru.rows.length > 0));
  const plans = reuse.map((ru) => withReuse(draft, n, ru));
  const computeRows = plans.map((pl) => pl.computeRows);
  const prefixRows = range(0, draft.prefixRows);
  const givenRows = reuse.map((rus) => [...prefixRows, ...rus.flatMap((ru) => ru.rows)].sort((a, b) => a - b));
  const keep: number[][] = [];
  for (let l = 1; l < computeRows.length; l++) {
    const prev = new Map(computeRows[l - 1].map((r, i) => [r, i]));
    keep.push(computeRows[l].map((r) => prev.get(r)!));
  }
  return { plan: plans[0], draft, reuse, computeRows, givenRows, keep };
}
