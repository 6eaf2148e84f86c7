/**
 * Where the image worker's script is, for starting threads that run it: the image workers
 * (isolate.ts) and the resize helpers that they start in turn (resize-threads.ts). One script,
 * worker.ts, serves both; `workerData.role` says which.
 *
 * - Bundled: dist/image-worker.js, beside dist/cli.js; code running inside that bundle (an image
 *   worker starting resize helpers) is that file itself.
 * - From sources (tests under tsx): worker.ts is bundled on first use with esbuild (a development
 *   dependency) into node_modules/.cache. Node does not run .ts worker files itself, and loading
 *   tsx inside a worker kept the process alive after the pool closed.
 */

import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { threadId } from 'node:worker_threads';

/** The file to pass to `new Worker()` for an image worker or a resize helper. */
export function imageWorkerScript(): string {
  if (__filename.endsWith('.ts')) return devWorkerBundle();
  // Inside a worker bundle (dist/image-worker.js or a development bundle), this code is that bundle.
  return basename(__filename).startsWith('image-worker') ? __filename : join(__dirname, 'image-worker.js');
}

let devBundle: string | undefined;

function devWorkerBundle(): string {
  if (devBundle !== undefined) return devBundle;
  // Inside node_modules so that the external `require('sharp')` resolves; one file per process.
  const dir = join(__dirname, '..', '..', '..', '..', 'node_modules', '.cache', 'vlcache-image-worker');
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, `image-worker-${process.pid}-${threadId}.js`);
  // esbuild's command line in a child process: its synchronous JS API starts a helper thread that
  // keeps the process alive.
  // A computed name, so that bundling this file does not try to resolve esbuild (used only from sources).
  const r = spawnSync(require.resolve(['esbuild', 'bin', 'esbuild'].join('/')), [join(__dirname, 'worker.ts'), '--bundle',
    '--platform=node', '--format=cjs', '--target=node20', '--external:sharp', '--log-level=error', `--outfile=${outfile}`],
  { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bundling the image worker failed: ${r.stderr || r.error?.message}`);
  devBundle = outfile;
  return outfile;
}
