import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CancelledError, QueueClosedError, Scheduler } from '../../../server/src/scheduler/queue';

/** A job that runs until `open()` is called, recording its name when it starts. */
function gate(order: string[], name: string) {
  let open!: () => void;
  const opened = new Promise<void>((r) => { open = r; });
  let started!: () => void;
  const running = new Promise<void>((r) => { started = r; });
  const run = async (signal: AbortSignal) => {
    order.push(name);
    started();
    await Promise.race([opened, new Promise<void>((r) => signal.addEventListener('abort', () => r()))]);
    return signal.aborted ? `${name}:aborted` : name;
  };
  return { run, open, running };
}

describe('Scheduler', () => {
  it('runs interactive jobs before background jobs queued earlier', async () => {
    const s = new Scheduler();
    const order: string[] = [];
    const g = gate(order, 'first');
    const first = s.enqueue('background', g.run);
    await g.running;
    const b1 = s.enqueue('background', async () => { order.push('b1'); });
    const b2 = s.enqueue('background', async () => { order.push('b2'); });
    const i1 = s.enqueue('interactive', async () => { order.push('i1'); });
    assert.deepEqual(s.counts(), { nInteractive: 1, nBackground: 2, running: true });
    g.open();
    await Promise.all([first.result, b1.result, b2.result, i1.result]);
    assert.deepEqual(order, ['first', 'i1', 'b1', 'b2']);
  });

  it('orders jobs queued in one synchronous stretch by priority before any starts', async () => {
    const s = new Scheduler();
    const order: string[] = [];
    const b = s.enqueue('background', async () => { order.push('b'); });
    const i = s.enqueue('interactive', async () => { order.push('i'); });
    await Promise.all([b.result, i.result]);
    assert.deepEqual(order, ['i', 'b']);
  });

  it('drops a cancelled undispatched job and aborts the running one', async () => {
    const s = new Scheduler();
    const order: string[] = [];
    const g = gate(order, 'running');
    const running = s.enqueue('interactive', g.run);
    await g.running;
    const controller = new AbortController();
    const queued = s.enqueue('interactive', async () => { order.push('queued'); }, controller.signal);
    controller.abort();
    await assert.rejects(queued.result, CancelledError);
    running.cancel();
    assert.equal(await running.result, 'running:aborted');
    assert.deepEqual(order, ['running']);
    assert.deepEqual(s.counts(), { nInteractive: 0, nBackground: 0, running: false });
  });

  it('rejects waiting jobs on close and waits for the running one', async () => {
    const s = new Scheduler();
    const g = gate([], 'r');
    const r = s.enqueue('interactive', g.run);
    await g.running;
    const w = s.enqueue('background', async () => 'never');
    await s.close();
    assert.equal(await r.result, 'r:aborted');
    await assert.rejects(w.result, QueueClosedError);
    await assert.rejects(s.enqueue('interactive', async () => 1).result, QueueClosedError);
  });
});
