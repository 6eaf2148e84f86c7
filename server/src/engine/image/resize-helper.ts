/**
 * A resize helper thread's loop (resize-threads.ts starts it through worker.ts): for each job, claim
 * bands until none is left, compute each into the shared output, count it done. Answers only on
 * failure.
 */

import type { MessagePort } from 'node:worker_threads';

import { computeBand } from './resize-bands';
import { kernelOn } from './resize-kernel';
import { DONE, type HelperErrorMessage, type HelperJobMessage, NEXT } from './resize-threads';

export function serveResizeBands(port: MessagePort): void {
  port.on('message', (msg: HelperJobMessage) => {
    if (msg.kind !== 'job') return;
    const { job, control } = msg;
    const nBands = job.bands.length / 2;
    try {
      const kernel = kernelOn(job.memory);
      for (let b = Atomics.add(control, NEXT, 1); b < nBands; b = Atomics.add(control, NEXT, 1)) {
        computeBand(job, b, kernel);
        Atomics.add(control, DONE, 1);
        Atomics.notify(control, DONE);
      }
    } catch (e) {
      port.postMessage({ kind: 'error', id: msg.id, message: e instanceof Error ? e.message : String(e) } satisfies HelperErrorMessage);
    }
  });
}
