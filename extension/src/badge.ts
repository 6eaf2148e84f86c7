/**
 * The answer badge: what the cache did for each image of an ask, said exactly. Built on the
 * protocol's one classification (server/src/protocol/reuse.ts), which the status-bar rate and the
 * statistics chart use too, so the three agree. Plain TypeScript (unit-tested without VS Code).
 *
 *   image KV from disk       "⚡ image reused (KV, disk) · 94% of the prompt reused · TTFT 12 ms"
 *   same image, same text    "⚡ image reused (prefix, RAM) · 97% of the prompt reused · TTFT 9 ms"
 *   encoder output only      "encoder reused (RAM) · TTFT 410 ms"
 *   new image, system prompt "cold · text prefix reused (17% of the prompt) · TTFT 1630 ms"
 *   nothing                  "cold · TTFT 1700 ms"
 */
import { askOutcome, imageReuseLabel, type AskOutcome, type AskResult } from '../../server/src/protocol';
import { formatMs } from './format';

/** The badge's colour: `hit` every image's KV reused, `partial` some reuse of images, `miss` none. */
export type BadgeTone = 'hit' | 'partial' | 'miss';

export function badgeTone(o: AskOutcome): BadgeTone {
  return o === 'image' ? 'hit' : o === 'partial' ? 'partial' : 'miss';
}

/** Fraction of the prompt's rows that were not computed (reused from any cache). */
export function promptReused(r: Pick<AskResult, 'cache'>): number {
  const c = r.cache;
  return c.tokensTotal === 0 ? 0 : 1 - c.tokensComputed / c.tokensTotal;
}

/** The per-image part: "image reused (KV, disk)", or "2 × image reused (KV, RAM) · 1 × cold" for several. */
export function imagesPart(r: Pick<AskResult, 'images'>): string {
  const labels = r.images.map((im) => imageReuseLabel(im.reuse));
  if (labels.length <= 1) return labels[0] ?? '';
  const counts = new Map<string, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  return [...counts].map(([l, n]) => `${n} × ${l}`).join(' · ');
}

export interface Badge {
  text: string;
  tone: BadgeTone;
  outcome: AskOutcome;
}

export function cacheBadge(r: Pick<AskResult, 'images' | 'cache' | 'timings'>): Badge {
  const outcome = askOutcome(r);
  const pct = `${Math.round(promptReused(r) * 100)}%`;
  const parts: string[] = [];
  if (r.images.length === 0) parts.push('text only');
  else parts.push(`${outcome === 'image' ? '⚡ ' : ''}${imagesPart(r)}`);
  if (outcome === 'prefix') parts.push(`text prefix reused (${pct} of the prompt)`);
  else if ((outcome === 'image' || outcome === 'partial') && promptReused(r) > 0) parts.push(`${pct} of the prompt reused`);
  parts.push(`TTFT ${formatMs(r.timings.ttftMs)}`);
  return { text: parts.join(' · '), tone: badgeTone(outcome), outcome };
}

/** The chart's and the status tooltip's word for an ask's outcome. */
export function outcomeLabel(o: AskOutcome): string {
  switch (o) {
    case 'image': return 'images reused';
    case 'partial': return 'partly reused';
    case 'prefix': return 'cold (text prefix reused)';
    default: return 'cold';
  }
}
