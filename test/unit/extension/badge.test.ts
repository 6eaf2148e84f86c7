/**
 * The answer badge and the per-image classification, on synthetic results: the issue's own case (a new
 * image whose system prompt came from the prefix cache is not a "cache hit"), several images, a daemon
 * without per-image outcomes, and the planner's rule for an image inside / beside the reused prefix.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cacheBadge } from '../../../extension/src/badge';
import { askOutcome, type AskImageReuse, type AskResult } from '../../../server/src/protocol';
import { imageReuseOutcome } from '../../../server/src/planner/image-reuse';
import type { Plan } from '../../../server/src/planner/plan';

function result(reuse: (AskImageReuse | undefined)[], prefixTokensReused: number, tokensComputed: number, tokensTotal = 100, ttftMs = 1630): Pick<AskResult, 'images' | 'cache' | 'timings'> {
  return {
    images: reuse.map((r, i) => ({ image: `file:///w/${i}.png`, width: 8, height: 8, nTokens: 4, downscaled: false, ...(r ? { reuse: r } : {}) })),
    cache: { mode: 'vlcache', encoderHits: 0, encoderMisses: 0, kvHits: 0, kvMisses: 0, prefixTokensReused, imageTokensReused: 0,
      tokensComputed, tokensTotal, recomputeFraction: tokensComputed / tokensTotal, tier: [] },
    timings: { preprocessMs: 0, visionMs: 0, prefillMs: 0, ttftMs, decodeMs: 0, decodeTokensPerS: 0, queueMs: 0 },
  };
}

describe('cache badge', () => {
  it('a new image after a cached system prompt is cold, with the prefix said as such (was "⚡ cache hit · 17% reused")', () => {
    const b = cacheBadge(result([{ kind: 'cold' }], 17, 83));
    assert.deepEqual(b, { text: 'cold · text prefix reused (17% of the prompt) · TTFT 1630 ms', tone: 'miss', outcome: 'prefix' });
  });
  it('names the tier of a reused image and the share of the prompt reused', () => {
    assert.equal(cacheBadge(result([{ kind: 'kv', tier: 'disk' }], 20, 6, 100, 12)).text, '⚡ image reused (KV, disk) · 94% of the prompt reused · TTFT 12 ms');
    assert.equal(cacheBadge(result([{ kind: 'encoder', tier: 'ram' }], 20, 80, 100, 400)).text, 'encoder reused (RAM) · 20% of the prompt reused · TTFT 400 ms');
    assert.equal(cacheBadge(result([{ kind: 'cold' }], 0, 100, 100, 1700)).text, 'cold · TTFT 1700 ms');
  });
  it('counts several images by outcome; one cold image makes the ask partial, not a hit', () => {
    const b = cacheBadge(result([{ kind: 'kv', tier: 'ram' }, { kind: 'kv', tier: 'ram' }, { kind: 'cold' }], 0, 40));
    assert.equal(b.text, '2 × image reused (KV, RAM) · 1 × cold · 60% of the prompt reused · TTFT 1630 ms');
    assert.equal(b.tone, 'partial');
    assert.equal(askOutcome(result([{ kind: 'kv', tier: 'ram' }, { kind: 'prefix', tier: 'ram' }], 0, 10)), 'image');
  });
  it('an image without an outcome (an older daemon) counts as cold', () => {
    assert.equal(askOutcome(result([undefined], 0, 100)), 'cold');
  });
});

describe('imageReuseOutcome', () => {
  const span = { key: 'k', start: 10, end: 20 };
  const plan = (prefixRows: number, reused: boolean): Plan => ({ prefixRows, prefixId: prefixRows ? 'p' : undefined, computeRows: [99],
    reuse: reused ? [{ image: 0, key: 'k', start: 10, rows: [11, 12] }] : [] });
  it('prefix when the whole image lies inside the reused prefix', () => {
    assert.deepEqual(imageReuseOutcome(span, 0, plan(20, false), undefined, 'ram'), { kind: 'prefix', tier: 'ram' });
  });
  it('kv (with the tier that served the entry) when the plan reuses its rows', () => {
    assert.deepEqual(imageReuseOutcome(span, 0, plan(5, true), 'disk', 'disk'), { kind: 'kv', tier: 'disk' });
  });
  it('encoder when only the encoder output was a hit; cold otherwise, even beside a reused prefix', () => {
    assert.deepEqual(imageReuseOutcome(span, 0, plan(5, false), undefined, 'ram'), { kind: 'encoder', tier: 'ram' });
    assert.deepEqual(imageReuseOutcome(span, 0, plan(5, false), undefined, undefined), { kind: 'cold' });
    assert.deepEqual(imageReuseOutcome(span, 0, plan(15, false), undefined, undefined), { kind: 'cold' });
  });
});
