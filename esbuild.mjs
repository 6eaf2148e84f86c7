// Bundles the CLI/daemon and the extension. `--if-stale` skips the build when
// every output is newer than every source file (so `npm start` stays fast).
import * as esbuild from 'esbuild';
import { statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const entries = [
  { in: 'server/src/cli/main.ts', out: 'dist/cli.js', banner: '#!/usr/bin/env node' },
  // Image decoding and preprocessing run in worker threads (server/src/engine/image/isolate.ts).
  { in: 'server/src/engine/image/worker.ts', out: 'dist/image-worker.js' },
  { in: 'extension/src/main.ts', out: 'dist/extension.js' },
];

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function isStale() {
  const src = Math.max(...['server/src', 'kernels', 'extension/src'].map(newestMtime), statSync('package.json').mtimeMs);
  try {
    return entries.some((e) => statSync(e.out).mtimeMs < src);
  } catch {
    return true;
  }
}

if (process.argv.includes('--if-stale') && !isStale()) process.exit(0);

await Promise.all(
  entries.map((e) =>
    esbuild.build({
      entryPoints: [e.in],
      outfile: e.out,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      sourcemap: true,
      // Native packages that load binaries next to their own modules stay external (sharp's
      // binding is in @img/sharp-<os>-<arch>; scripts/package.mjs ships the target's).
      external: ['onnxruntime-node', 'vscode', 'sharp'],
      banner: e.banner ? { js: e.banner } : undefined,
      logLevel: 'warning',
    }),
  ),
);
