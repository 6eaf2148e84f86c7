/**
 * The compute plan of one prefill: which rows are reused from an exact cached
 * prefix, which rows of later images are reused from their image-KV entries
 * (the VLCache case), and which rows are computed. Pure bookkeeping: no tensors,
 * no engine, exact and CPU-testable.
 */

/** How cached KV may be reused (DESIGN.md section 4). */
export type Mode = 'full' | 'prefix' | 'naive' | 'epic' | 'vlcache';
export const MODES: readonly Mode[] = ['full', 'prefix', 'naive', 'epic', 'vlcache'];

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
  /** vlcache: fraction of each reused image's leading rows to recompute (0.05). */
  readonly ratio: number;
  /** epic: leading rows recomputed per reused image (EPIC/LegoLink-k, MPIC-k). */
  readonly epicK: number;
}

export interface ImageReuse {
  readonly image: number;
  readonly key: string;
  /** Rows [r0, r1) of the prompt take K/V from the image entry's rows [r0 - start, r1 - start). */
  readonly r0: number;
  readonly r1: number;
  readonly start: number;
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
): Plan {
  const n = p.tokens.length;
  // Precondition: spans sorted, disjoint and inside the prompt.
  let prefixRows = opts.mode === 'full' ? 0 : Math.min(prefix.rows, n - 1);
  // Never split an image: its rows are reused whole or not from the prefix.
  for (const img of p.images) if (img.start < prefixRows && prefixRows < img.end) prefixRows = img.start;

  const reuse: ImageReuse[] = [];
  if (opts.mode === 'naive' || opts.mode === 'epic' || opts.mode === 'vlcache') {
    p.images.forEach((img, i) => {
      if (img.start < prefixRows || !hasImageKv(img.key)) return;
      const nImg = img.end - img.start;
      const head = opts.mode === 'naive' ? 0
        : opts.mode === 'epic' ? Math.min(opts.epicK, nImg)
        : vlcacheHead(opts.ratio, nImg);
      // The prompt's last row is always computed (its logits are the answer's first token).
      const r1 = Math.min(img.end, n - 1);
      if (img.start + head < r1) reuse.push({ image: i, key: img.key, r0: img.start + head, r1, start: img.start });
    });
  }
  const reused = new Uint8Array(n);
  for (const r of reuse) reused.fill(1, r.r0, r.r1);
  const computeRows: number[] = [];
  for (let r = prefixRows; r < n; r++) if (!reused[r]) computeRows.push(r);
  return { prefixRows, prefixId: prefixRows > 0 ? prefix.id : undefined, reuse, computeRows };
}
