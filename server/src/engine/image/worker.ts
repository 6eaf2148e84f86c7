/**
 * Entry point of an image worker thread (isolate.ts starts it; esbuild bundles it as
 * dist/image-worker.js). With `workerData.role = 'resize-helper'` the same script is instead a
 * resize helper (resize-threads.ts starts those, resize-helper.ts is their loop).
 * An image worker runs one task at a time on the bytes it is sent and answers
 *   { id, ok: true, value }                       (typed arrays transferred, not copied), or
 *   { id, ok: false, error: { name, message, code?, source? } }.
 * Nothing here writes to stdout: it is pointed at stderr before any decoder loads, so that a
 * library's warning can never land in the CLI's `--json` output or the LSP stream.
 */

import { parentPort, workerData } from 'node:worker_threads';

import { decodeImage, type DecodeOptions } from './decode';
import { ImageError } from './errors';
import { preprocessImage, type PreprocessOptions } from './preprocess';
import { serveResizeBands } from './resize-helper';
import { resizeThreads } from './resize-threads';
import { renderThumbnail } from './thumbnail';
import type { PreprocessConfig } from '../config';

/** A request from isolate.ts. */
export type WorkerRequest =
  | { id: number; task: 'decode'; bytes: Uint8Array; options: DecodeOptions }
  | { id: number; task: 'preprocess'; bytes: Uint8Array; cfg: PreprocessConfig; options: PreprocessOptions; into?: ArrayBuffer }
  | { id: number; task: 'thumbnail'; bytes: Uint8Array; name: string; side?: number };

/** An error as it crosses the thread boundary. */
export interface WorkerError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly source?: string;
}

export type WorkerResponse = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WorkerError };

async function run(req: WorkerRequest): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  switch (req.task) {
    case 'decode': {
      const image = await decodeImage(req.bytes, req.options);
      // Always a copy: sharp's pixels are external memory, and transferring that ends the worker (Node 22+).
      const data = image.data.slice();
      return { value: { ...image, data }, transfer: [data.buffer as ArrayBuffer] };
    }
    case 'preprocess': {
      // The resize helpers start with this worker's first image (their start overlaps its decoding), so
      // that a worker that only renders thumbnails never starts them.
      resizeThreads().warm();
      const p = await preprocessImage(req.bytes, req.cfg, req.options, req.into);
      // The resized pixels are in the kept buffer `into` when they fit, else in a buffer allocated here
      // (never sharp's external memory, see preprocess.ts); either is transferred whole. An `into` too
      // small goes back unused as `spare`.
      const inInto = req.into !== undefined && p.resized.data.buffer === req.into;
      const data = inInto || ownsBuffer(p.resized.data) ? p.resized.data : p.resized.data.slice();
      const spare = req.into !== undefined && !inInto ? req.into : undefined;
      return {
        value: { ...p, resized: { ...p.resized, data }, spare },
        transfer: [data.buffer as ArrayBuffer, ...(spare ? [spare] : [])],
      };
    }
    case 'thumbnail':
      return { value: await renderThumbnail(req.bytes, req.name, req.side), transfer: [] };
  }
}

/** True when `a` is the whole of its ArrayBuffer (not a view into a pooled slab), so it can be transferred. */
function ownsBuffer(a: Uint8Array): boolean {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
}

process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;

const port = parentPort;
if (port === null) throw new Error('engine/image/worker.ts runs only as a worker thread (see isolate.ts)');
if ((workerData as { role?: string } | undefined)?.role === 'resize-helper') {
  serveResizeBands(port);
} else {
  port.on('message', (req: WorkerRequest) => {
    run(req).then(
      ({ value, transfer }) => {
        port.postMessage({ id: req.id, ok: true, value } satisfies WorkerResponse, transfer);
      },
      (e: unknown) => {
        const error: WorkerError = e instanceof ImageError
          ? { name: e.name, message: e.message, code: e.code, source: e.source }
          : { name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) };
        port.postMessage({ id: req.id, ok: false, error } satisfies WorkerResponse);
      },
    );
  });
}
