/**
 * One classification of "what did the cache do for this ask", shared by the daemon (the statistics it
 * keeps per request and per image) and the editor (the answer badge, the status-bar rate, the chart),
 * so the three always agree. Pure functions over the protocol's own types.
 */
import type { AskImageReuse, AskResult } from './ask';

/**
 * The ask as a whole:
 * - `image`: every image's K/V was reused (from the image cache or an exact prefix);
 * - `partial`: some images' K/V was reused, or only encoder outputs were;
 * - `prefix`: no image was reused, only a text prefix (e.g. the system prompt);
 * - `cold`: nothing was reused.
 */
export type AskOutcome = 'image' | 'partial' | 'prefix' | 'cold';

/** Counts of images by what happened to them. */
export interface ImageReuseCounts {
  kv: number;
  prefix: number;
  encoder: number;
  cold: number;
}

export function emptyReuseCounts(): ImageReuseCounts {
  return { kv: 0, prefix: 0, encoder: 0, cold: 0 };
}

/** Whether the image's K/V was reused (the cache's whole point): `kv` or `prefix`. */
export function kvReused(r: AskImageReuse | undefined): boolean {
  return r?.kind === 'kv' || r?.kind === 'prefix';
}

/** The per-image outcomes of an ask, by count. An image without `reuse` (an older daemon) counts as cold. */
export function reuseCounts(r: Pick<AskResult, 'images'>): ImageReuseCounts {
  const c = emptyReuseCounts();
  for (const im of r.images) c[im.reuse?.kind ?? 'cold']++;
  return c;
}

export function addReuseCounts(into: ImageReuseCounts, c: ImageReuseCounts): void {
  into.kv += c.kv;
  into.prefix += c.prefix;
  into.encoder += c.encoder;
  into.cold += c.cold;
}

/** The ask's outcome (see {@link AskOutcome}). */
export function askOutcome(r: Pick<AskResult, 'images' | 'cache'>): AskOutcome {
  const c = reuseCounts(r);
  const n = r.images.length;
  const reused = c.kv + c.prefix;
  if (n > 0 && reused === n) return 'image';
  if (reused > 0 || c.encoder > 0) return 'partial';
  return r.cache.prefixTokensReused > 0 ? 'prefix' : 'cold';
}

/** Fraction of images whose K/V was reused; undefined before the first image. */
export function imageReuseRate(c: ImageReuseCounts): number | undefined {
  const n = c.kv + c.prefix + c.encoder + c.cold;
  return n === 0 ? undefined : (c.kv + c.prefix) / n;
}

/** "image reused (KV, disk)", "image reused (prefix, RAM)", "encoder reused (RAM)", "cold". */
export function imageReuseLabel(r: AskImageReuse | undefined): string {
  const tier = r?.tier === 'disk' ? 'disk' : 'RAM';
  switch (r?.kind) {
    case 'kv': return `image reused (KV, ${tier})`;
    case 'prefix': return 'image reused (prefix, RAM)';
    case 'encoder': return `encoder reused (${tier})`;
    default: return 'cold';
  }
}
