/**
 * The device tier on the CPU: its entries are opaque tensor handles, so host tensors of the engine's own type
 * stand in for device ones; what is checked is the tier's budget, eviction order, statistics and that every
 * entry it held is released exactly once (device memory is not garbage-collected).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceTier, type DeviceEntry } from '../../../server/src/cache/device-tier';
import { lfu } from '../../../server/src/cache/policy';
import { f32, type Tensor } from '../../../server/src/engine/ort';

/** An image's K/V as the engine keeps it: one tensor per layer and kind, [rows, 1, 4] float32. */
interface KvOnDevice extends DeviceEntry {
  readonly keys: Tensor[];
  readonly values: Tensor[];
}

function kv(name: string, rows: number, layers = 1): KvOnDevice {
  const t = () => f32(new Float32Array(rows * 4).fill(rows), [rows, 1, 4]);
  return { key: name, kind: 'kv', keys: Array.from({ length: layers }, t), values: Array.from({ length: layers }, t),
    bytes: 2 * layers * rows * 4 * 4 };
}

/** A tier whose releases and evictions are recorded in order. */
function tier(budgetBytes: number, policy = undefined as typeof lfu | undefined) {
  const released: string[] = [], evicted: string[] = [];
  const t = new DeviceTier<KvOnDevice>({ budgetBytes, policy, release: (e) => released.push(e.key),
    onEvict: (ev) => { assert.equal(ev.tier, 'device'); evicted.push(ev.key); } });
  return { t, released, evicted };
}

describe('device tier', () => {
  it('evicts the least recently used entries beyond its budget and releases each once', () => {
    const { t, released, evicted } = tier(1000);
    // 32 bytes per row (K and V of one layer): 10 rows = 320 bytes; three fit in 1000.
    for (const n of ['a', 'b', 'c']) t.put(kv(n, 10));
    assert.deepEqual(released, []);
    assert.equal(t.get('a')?.keys.length, 1); // a is now the most recent: order b, c, a
    t.put(kv('d', 10)); // 1280 > 1000: b goes
    assert.deepEqual(evicted, ['b']);
    t.put(kv('e', 20)); // 960 + 640: c then a go
    assert.deepEqual(evicted, ['b', 'c', 'a']);
    assert.deepEqual(released, ['b', 'c', 'a']);
    assert.deepEqual(t.keys(), ['d', 'e']);
    assert.deepEqual(t.stats(), { tier: 'device', enabled: true, nEntries: 2, bytes: 960, budgetBytes: 1000, nEvictions: 3 });
    assert.equal(t.has('b'), false);
    assert.equal(t.get('b'), undefined);
  });

  it('has() is not an access; a plugged-in policy decides the order', () => {
    const { t, evicted } = tier(640, lfu);
    t.put(kv('a', 10));
    t.put(kv('b', 10));
    t.get('a');
    assert.ok(t.has('b'));
    t.put(kv('c', 10)); // lfu: b (0 hits) goes, a (1 hit) stays
    assert.deepEqual(evicted, ['b']);
  });

  it('releases a replaced entry, deleted entries and, on clear, all of them (idle release)', () => {
    const { t, released, evicted } = tier(10_000);
    const first = kv('a', 10);
    t.put(first);
    t.put(first); // the same entry again: nothing to release
    assert.deepEqual(released, []);
    t.put(kv('a', 12));
    assert.deepEqual(released, ['a']);
    assert.equal(t.stats().bytes, 384);
    t.put(kv('b', 10));
    t.put(kv('c', 10));
    assert.equal(t.delete('b'), true);
    assert.equal(t.delete('b'), false);
    t.clear();
    assert.deepEqual(released.sort(), ['a', 'a', 'b', 'c']);
    assert.deepEqual(evicted, []); // deletes, replacements and clears are not evictions
    assert.deepEqual(t.stats(), { tier: 'device', enabled: true, nEntries: 0, bytes: 0, budgetBytes: 10_000, nEvictions: 0 });
  });

  it('refuses an entry larger than the budget, leaving it to the caller, and drops the stale one', () => {
    const { t, released } = tier(500);
    t.put(kv('a', 10));
    t.put(kv('a', 20)); // 640 > 500
    assert.equal(t.has('a'), false);
    assert.deepEqual(released, ['a']); // only the old entry, which the tier held
    const off = tier(0);
    off.t.put(kv('x', 1));
    assert.equal(off.t.has('x'), false);
    assert.deepEqual(off.released, []);
    assert.equal(off.t.stats().enabled, false);
  });

  it('rejects a budget or an entry size that is not a byte count', () => {
    assert.throws(() => new DeviceTier<KvOnDevice>({ budgetBytes: -1, release: () => {} }), RangeError);
    assert.throws(() => new DeviceTier<KvOnDevice>({ budgetBytes: 1.5, release: () => {} }), RangeError);
    const { t } = tier(100);
    assert.throws(() => t.put({ ...kv('a', 1), bytes: NaN }), RangeError);
  });
});
