// Compiles the extension tests (test/e2e/*.ts) to out/test/e2e/*.js, CommonJS for
// VS Code's extension host; `vscode` and `mocha` come from the host and node_modules.
import * as esbuild from 'esbuild';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

export async function buildExtensionTests() {
  const entryPoints = readdirSync(here)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(here, f));
  await esbuild.build({
    entryPoints,
    outdir: join(root, 'out', 'test', 'e2e'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: true,
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildExtensionTests();
