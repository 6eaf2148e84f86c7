/**
 * The daemon's memory stays within its RAM budget with new questions: the exact-prefix cache
 * takes a quarter of ramBudgetMb. It had a fixed 512 MiB of its own, so a daemon given 32 MiB
 * grew by ~0.6 MB per ask with new questions (`vlcache soak --daemon`: 326 -> 377 MiB over
 * asks 150-300; now 292 -> 305).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../server/src/config';
import { EngineHost } from '../../../server/src/engine-host';
import { builtinModelDir } from '../../../server/src/paths';
import { patternPng } from '../../support/images';
import { makeWorkspace } from '../../support/server-fixture';

describe('daemon memory budget', () => {
  it('keeps the exact-prefix cache within a quarter of ramBudgetMb over asks with new questions', async () => {
    const ws = makeWorkspace();
    process.env.VLCACHE_HOME = ws.home;
    const host = new EngineHost(parseConfig({ ramBudgetMb: 4, diskBudgetMb: 0, device: 'cpu' }), builtinModelDir(), () => {}, () => {});
    const e = await host.get();
    try {
      const prefixes = e.gen.reuse!.prefixes;
      assert.equal(prefixes.budgetBytes, 1 << 20);
      // Each ask caches its prompt's KV (an image of ~100-300 tokens at 3 KiB per token for the built-in model).
      for (let i = 0; i < 12; i++) {
        await e.gen.ask({ images: [{ name: `p${i}.png`, bytes: patternPng(224, 168, i + 1) }], question: `Question ${i}?`, maxTokens: 1 });
        assert.ok(prefixes.bytes <= 1 << 20, `after ask ${i + 1}: ${prefixes.bytes} bytes of prefixes`);
      }
      assert.ok(prefixes.bytes > 0);
    } finally {
      await e.model.dispose();
    }
  });
});
