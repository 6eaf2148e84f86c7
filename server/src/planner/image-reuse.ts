/**
 * What the cache did for one image of a prefill, from the plan that ran: its rows inside the reused
 * exact prefix, its K/V taken from an image-KV entry, only its encoder output reused, or nothing.
 * Pure bookkeeping (the protocol's AskImageReuse has the same shape).
 */
import type { ImageSpan, Plan } from './plan';

export interface ImageReuseOutcome {
  kind: 'kv' | 'prefix' | 'encoder' | 'cold';
  tier?: 'ram' | 'disk';
}

/**
 * @param span the image's rows [start, end) in the prompt
 * @param index the image's index in the prompt (ImageReuse.image)
 * @param kvTier the tier that served the image's KV entry, when the plan looked it up and found it
 * @param encoderTier the tier that served its encoder output, when it was a hit
 * An image only partly inside the prefix counts by what happened to the rest of it.
 */
export function imageReuseOutcome(span: ImageSpan, index: number, plan: Plan, kvTier: string | undefined,
  encoderTier: string | undefined): ImageReuseOutcome {
  if (plan.prefixRows > 0 && span.end <= plan.prefixRows) return { kind: 'prefix', tier: 'ram' };
  if (plan.reuse.some((ru) => ru.image === index)) return { kind: 'kv', tier: asTier(kvTier) };
  if (encoderTier !== undefined) return { kind: 'encoder', tier: asTier(encoderTier) };
  return { kind: 'cold' };
}

function asTier(t: string | undefined): 'ram' | 'disk' {
  return t === 'disk' ? 'disk' : 'ram';
}
