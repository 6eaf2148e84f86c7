import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RamTier } from '../../../server/src/cache/ram-tier';
import { lfu } from '../../../server/src/cache/policy';
import type { EvictionListener } from '../../../server/src/cache/tier';
import { entry, key } from './helpers';

function evictions(): { onEvict: EvictionListener; keys: string[] } {
  const keys: string[] = [];
  return { onEvict: (ev) => keys.push(ev.key), keys };
}

describe('RAM tier', () => {
  it('evicts the least recently used entries first, exactly as many as needed', () => {
    const ev = evictions();
    const ram = new RamTier({ budgetBytes: 1000, onEvict: ev.onEvict });
    // 4 × 240 = 960 bytes fit in 1000.
    for (const n of ['a', 'b', 'c', 'd']) ram.put(entry(n, 240));
    assert.deepEqual(ev.keys, []);
    ram.get(key('a')); // a is now the most recent: order b, c, d, a
    ram.put(entry('e', 240)); // 1200 > 1000: b goes (960 - 240 + 240 = 960)
    assert.deepEqual(ev.keys, [key('b')]);
    ram.put(entry('f', 480)); // 960 + 480 = 1440: c then d go (960)
    assert.deepEqual(ev.keys, [key('b'), key('c'), key('d')]);
    assert.deepEqual(ram.keys(), [key('a'), key('e'), key('f')]);
    assert.equal(ram.stats().bytes, 960);
    assert.equal(ram.stats().nEvictions, 3);
  });

  it('follows a plugged-in policy: lfu evicts the least used first', () => {
    const ev = evictions();
    const ram = new RamTier({ budgetBytes: 300, policy: lfu, onEvict: ev.onEvict });
    for (const n of ['a', 'b', 'c']) ram.put(entry(n, 100));
    ram.get(key('a'));
    ram.get(key('a'));
    ram.get(key('b'));
    ram.get(key('c'));
    ram.get(key('c'));
    ram.get(key('c'));
    // Hits: a 2, b 1, c 3; b is also not the least recent, but the least used.
    ram.put(entry('d', 100));
    assert.deepEqual(ev.keys, [key('b')]);
  });

  it('does not keep an entry larger than the whole budget, and drops the stale one under its key', () => {
    const ram = new RamTier({ budgetBytes: 100 });
    ram.put(entry('a', 40));
    ram.put(entry('b', 40));
    ram.put(entry('a', 200, { seed: 9 }));
    assert.equal(ram.get(key('a')), undefined);
    assert.ok(ram.get(key('b')), 'other entries are not evicted for an entry that cannot fit');
  });

  it('replaces an entry in place without counting an eviction', () => {
    const ev = evictions();
    const ram = new RamTier({ budgetBytes: 100, onEvict: ev.onEvict });
    ram.put(entry('a', 60));
    ram.put(entry('a', 80, { seed: 2 }));
    assert.deepEqual(ev.keys, []);
    assert.equal(ram.stats().bytes, 80);
    assert.equal(ram.get(key('a'))!.tensors[0].data[1], (2 * 31 + 7) & 0xff);
  });

  it('returns the very object that was put (no copy)', () => {
    const ram = new RamTier({ budgetBytes: 100 });
    const e = entry('a', 8);
    ram.put(e);
    assert.equal(ram.get(key('a')), e);
  });

  it('holds nothing with a zero budget', () => {
    const ram = new RamTier({ budgetBytes: 0 });
    ram.put(entry('a', 8));
    assert.equal(ram.get(key('a')), undefined);
    assert.equal(ram.stats().enabled, false);
  });

  it('refuses a budget that is not a byte count', () => {
    assert.throws(() => new RamTier({ budgetBytes: -1 }), RangeError);
    assert.throws(() => new RamTier({ budgetBytes: 1.5 }), RangeError);
  });
});
