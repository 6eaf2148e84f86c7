import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fifo, lfu, lru, policyByName, UsageTable } from '../../../server/src/cache/policy';

describe('eviction policies', () => {
  // a, b, c put in that order (stamps 1, 2, 3); then a is hit twice (4, 5) and c once (6).
  function table(): UsageTable {
    const t = new UsageTable();
    for (const id of ['a', 'b', 'c']) t.add(id, 100);
    t.touch('a');
    t.touch('a');
    t.touch('c');
    return t;
  }

  it('orders least recently used first under lru', () => {
    assert.deepEqual(table().order(lru), ['b', 'a', 'c']);
  });

  it('orders least used first under lfu, least recent among equals', () => {
    // Hits: b 0, c 1, a 2.
    assert.deepEqual(table().order(lfu), ['b', 'c', 'a']);
  });

  it('orders by insertion under fifo, whatever the hits', () => {
    assert.deepEqual(table().order(fifo), ['a', 'b', 'c']);
  });

  it('breaks ties by id, so the order never depends on map iteration', () => {
    const t = new UsageTable(() => 1000); // a frozen clock still gives strictly increasing stamps
    t.add('z', 1, 7);
    t.add('y', 1, 7);
    assert.deepEqual(t.order(lru), ['y', 'z']);
  });

  it('picks just enough victims, never the entry being replaced', () => {
    const t = table(); // 300 bytes in a, b, c
    // Budget 350, 150 incoming: 100 over, so one victim (b).
    assert.deepEqual(t.victims(lru, 350, 150), ['b']);
    // Budget 250, 150 incoming: 200 over: b then a.
    assert.deepEqual(t.victims(lru, 250, 150), ['b', 'a']);
    // Replacing b (its 100 bytes are freed) with 150 bytes in a 350 budget: 300 - 100 + 150 = 350, nothing over.
    assert.deepEqual(t.victims(lru, 350, 150, 'b'), []);
    // Replacing b with 250 bytes in a 350 budget: 450 - 350 = 100 over; b is skipped, a goes.
    assert.deepEqual(t.victims(lru, 350, 250, 'b'), ['a']);
  });

  it('keeps the byte total as entries come and go', () => {
    const t = table();
    t.add('a', 40); // replace: 40 + 100 + 100
    t.remove('b');
    assert.equal(t.bytes, 140);
    assert.equal(t.size, 2);
  });

  it('looks policies up by name', () => {
    assert.equal(policyByName('lfu'), lfu);
    assert.equal(policyByName('constructor'), undefined);
  });
});
