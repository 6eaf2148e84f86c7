/**
 * The request queue: one job runs at a time (the engine and cache have one owner).
 * Interactive jobs run before background ones (prefetch); within a priority, in
 * arrival order. Cancelling an undispatched job drops it; cancelling the running
 * job aborts its AbortSignal, which the generator checks between steps.
 */
export type Priority = 'interactive' | 'background';

/** Rejection of a job cancelled before it started. */
export class CancelledError extends Error {
  constructor() {
    super('the request was cancelled before it started');
    this.name = 'CancelledError';
  }
}

/** Rejection of jobs still queued when the queue closes. */
export class QueueClosedError extends Error {
  constructor() {
    super('the server is shutting down');
    this.name = 'QueueClosedError';
  }
}

interface Job {
  readonly priority: Priority;
  readonly controller: AbortController;
  readonly run: (signal: AbortSignal) => Promise<unknown>;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

export interface Scheduled<T> {
  readonly result: Promise<T>;
  /** Drops the job if undispatched (its result rejects with CancelledError), else aborts its signal. */
  cancel(): void;
}

export class Scheduler {
  private readonly waiting: Job[] = [];
  private running?: Job;
  private closed = false;
  private pumpQueued = false;

  /**
   * Queues `run`. Dispatch happens on a later microtask, so jobs queued in one
   * synchronous stretch are ordered by priority before the first of them starts.
   * @throws QueueClosedError (through `result`) after close().
   */
  enqueue<T>(priority: Priority, run: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Scheduled<T> {
    let job!: Job;
    const result = new Promise<T>((resolve, reject) => {
      job = { priority, controller: new AbortController(), run, resolve: resolve as (v: unknown) => void, reject };
    });
    const cancel = () => this.cancel(job);
    if (this.closed) job.reject(new QueueClosedError());
    else {
      this.waiting.push(job);
      this.schedulePump();
    }
    if (signal?.aborted) cancel();
    else signal?.addEventListener('abort', cancel, { once: true });
    void result.finally(() => signal?.removeEventListener('abort', cancel)).catch(() => {});
    return { result, cancel };
  }

  /** Interactive waiting, background waiting, and whether a job runs. */
  counts(): { nInteractive: number; nBackground: number; running: boolean } {
    const nInteractive = this.waiting.filter((j) => j.priority === 'interactive').length;
    return { nInteractive, nBackground: this.waiting.length - nInteractive, running: this.running !== undefined };
  }

  /** True when an interactive job waits: a running background job may stop early for it. */
  interactiveWaiting(): boolean {
    return this.waiting.some((j) => j.priority === 'interactive');
  }

  /** Rejects every waiting job, aborts the running one and resolves when it has finished. */
  async close(): Promise<void> {
    this.closed = true;
    for (const j of this.waiting.splice(0)) j.reject(new QueueClosedError());
    const r = this.running;
    if (r) {
      r.controller.abort();
      await new Promise<void>((done) => { this.onIdle = done; });
    }
  }

  private onIdle?: () => void;

  private cancel(job: Job): void {
    const i = this.waiting.indexOf(job);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      job.reject(new CancelledError());
    } else if (this.running === job) {
      job.controller.abort();
    }
  }

  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    const i = this.waiting.findIndex((j) => j.priority === 'interactive');
    const [job] = this.waiting.splice(i >= 0 ? i : 0, 1);
    if (!job) return;
    this.running = job;
    try {
      job.resolve(await job.run(job.controller.signal));
    } catch (e) {
      job.reject(e);
    } finally {
      this.running = undefined;
      if (this.waiting.length) this.schedulePump();
      else this.onIdle?.();
    }
  }
}
