/**
 * `vlcache cache stats|clear|verify --cache-dir DIR [--json]`: inspect and maintain one workspace's VLCache store.
 *
 * The command works on the directory alone, without loading a model: `stats` reads file headers only, `verify`
 * reads every file in full and deletes those that do not verify, `clear` deletes every entry file (of every model)
 * and nothing else. Exit status: 0 done, 1 the directory cannot be used or a file could not be deleted, 2 usage.
 */
import { parseArgs } from 'node:util';
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cacheRoot, collectStaleGraphFolders } from '../engine/graph-files';
import { clearCacheDir, errText, isStaleTemp, scanCacheDir, verifyCacheDir } from '../cache/disk-dir';

const USAGE = `usage: vlcache cache stats|clear|verify --cache-dir DIR [--json]
  stats    entries and bytes on disk, by kind and model; damaged and temp files
  clear    delete every cache entry file in DIR (nothing else)
  verify   read and check every entry file; delete the ones that do not verify`;

type Sub = 'stats' | 'clear' | 'verify';

/** Runs one `vlcache cache` subcommand; returns the process exit code. Prints to stdout, problems to stderr. */
export async function runCacheCommand(argv: string[]): Promise<number> {
  let sub: Sub, dir: string, json: boolean;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'cache-dir': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (positionals.length !== 1 || !['stats', 'clear', 'verify'].includes(positionals[0])) {
      throw new Error(positionals.length === 0 ? 'cache needs a subcommand' : `unknown cache subcommand '${positionals.join(' ')}'`);
    }
    if (!values['cache-dir']) throw new Error('cache needs --cache-dir DIR (the workspace cache directory)');
    sub = positionals[0] as Sub;
    dir = resolve(values['cache-dir']);
    json = values.json ?? false;
  } catch (e) {
    console.error(`vlcache: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }

  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    console.error(`vlcache: no cache directory at ${dir} (${code === 'ENOENT' ? 'it does not exist' : errText(e)}); check --cache-dir`);
    return 1;
  }

  try {
    if (sub === 'stats') return stats(dir, json);
    if (sub === 'clear') return clear(dir, json);
    return verify(dir, json);
  } catch (e) {
    console.error(`vlcache: cannot read the cache directory ${dir} (${errText(e)})`);
    return 1;
  }
}

/** Header-only summary: what `get` could serve, grouped by kind and model, and what it would drop. */
function stats(dir: string, json: boolean): number {
  const scan = scanCacheDir(dir);
  const groups = new Map<string, { kind: string; modelFingerprint: string; nEntries: number; bytes: number }>();
  const damaged = { nFiles: 0, bytes: 0, reasons: {} as Record<string, number> };
  let nEntries = 0, bytes = 0;
  for (const f of scan.entries) {
    if (!f.header) {
      damaged.nFiles++;
      damaged.bytes += f.bytes;
      damaged.reasons[f.failure!.reason] = (damaged.reasons[f.failure!.reason] ?? 0) + 1;
      continue;
    }
    const id = `${f.header.kind}\0${f.header.model_fingerprint}`;
    const g = groups.get(id) ?? { kind: f.header.kind, modelFingerprint: f.header.model_fingerprint, nEntries: 0, bytes: 0 };
    g.nEntries++;
    g.bytes += f.bytes;
    groups.set(id, g);
    nEntries++;
    bytes += f.bytes;
  }
  const nStaleTemp = scan.tempFiles.filter(isStaleTemp).length;
  const out = {
    dir, nEntries, bytes,
    groups: [...groups.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.modelFingerprint.localeCompare(b.modelFingerprint)),
    damaged, tempFiles: { nFiles: scan.tempFiles.length, nStale: nStaleTemp },
  };
  if (json) {
    console.log(JSON.stringify(out));
    return 0;
  }
  console.log(`cache ${dir}`);
  console.log(`${plural(nEntries, 'entry', 'entries')}, ${formatBytes(bytes)} (headers checked; \`verify\` checks the data)`);
  for (const g of out.groups) {
    console.log(`  ${g.kind.padEnd(8)} model ${g.modelFingerprint.slice(0, 16).padEnd(16)}  ${plural(g.nEntries, 'entry', 'entries').padStart(12)}  ${formatBytes(g.bytes).padStart(10)}`);
  }
  if (damaged.nFiles > 0) {
    const why = Object.entries(damaged.reasons).map(([r, n]) => `${n} ${r}`).join(', ');
    console.log(`${plural(damaged.nFiles, 'damaged file', 'damaged files')}, ${formatBytes(damaged.bytes)} (${why}): \`vlcache cache verify\` deletes ${damaged.nFiles === 1 ? 'it' : 'them'}`);
  }
  if (scan.tempFiles.length > 0) console.log(`${plural(scan.tempFiles.length, 'temp file', 'temp files')} (${nStaleTemp} left by killed writes)`);
  return 0;
}

function clear(dir: string, json: boolean): number {
  const r = clearCacheDir(dir);
  // The generated graphs of models that were deleted hold the deleted weights' space through hard links.
  const graphs = collectStaleGraphFolders();
  if (json) console.log(JSON.stringify({ dir, ...r, graphFoldersRemoved: graphs.nFolders, graphBytesRemoved: graphs.bytes }));
  else {
    console.log(`removed ${plural(r.nRemoved, 'entry', 'entries')}, ${formatBytes(r.bytesRemoved)}, from ${dir}`);
    console.log(`removed ${plural(graphs.nFolders, 'graph folder', 'graph folders')} of deleted models, ${formatBytes(graphs.bytes)}, from ${join(cacheRoot(), 'graphs')}`);
  }
  if (r.notRemoved.length > 0) {
    console.error(`vlcache: could not delete ${plural(r.notRemoved.length, 'file', 'files')} in ${dir} (check its permissions): ${r.notRemoved.slice(0, 5).join(', ')}`);
    return 1;
  }
  return 0;
}

function verify(dir: string, json: boolean): number {
  const r = verifyCacheDir(dir);
  const dropped = r.files.filter((f) => f.status === 'dropped');
  const notRemoved = dropped.filter((f) => !f.removed);
  if (json) {
    const files = dropped.map((f) => ({ name: f.name, reason: f.failure!.reason, detail: f.failure!.detail, removed: f.removed }));
    console.log(JSON.stringify({ dir, nChecked: r.nChecked, nOk: r.nOk, nDropped: r.nDropped, nTempRemoved: r.nTempRemoved, dropped: files }));
  } else {
    console.log(`checked ${plural(r.nChecked, 'file', 'files')} in ${dir}: ${r.nOk} ok, ${r.nDropped} dropped`);
    for (const f of dropped) console.log(`  dropped ${f.name}: ${f.failure!.reason} (${f.failure!.detail})${f.removed ? '' : ' — could not delete it'}`);
    if (r.nTempRemoved > 0) console.log(`removed ${plural(r.nTempRemoved, 'temp file', 'temp files')} left by killed writes`);
  }
  if (notRemoved.length > 0) {
    console.error(`vlcache: could not delete ${plural(notRemoved.length, 'damaged file', 'damaged files')} in ${dir} (check its permissions)`);
    return 1;
  }
  return 0;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Bytes in binary units with one decimal, e.g. `1.5 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
