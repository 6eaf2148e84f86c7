/**
 * `vlcache model download REPO [--dest DIR] [--revision R] [--json]`: a Qwen2-VL / Qwen2.5-VL
 * checkpoint from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN) into DIR/<repo name>, with
 * progress on stderr; the folder is printed on stdout (the --model to pass).
 * Exit status: 0 downloaded and checked, 1 the download failed (.part files kept for a resume), 2 usage.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { downloadModel, type ModelDownloadProgress } from '../models/download-model';
import { SUGGESTED_MODEL_REPOS } from '../protocol/download-model';
import { hubOptionsFromEnv } from '../models/hub';

const USAGE = `usage:
  vlcache model download REPO [--dest DIR (~/models)] [--revision R (main)] [--json]
      a Qwen2-VL / Qwen2.5-VL checkpoint from the Hugging Face hub into DIR/<name>: ${SUGGESTED_MODEL_REPOS.join(', ')}, …
      HF_TOKEN is sent to the hub (for gated models), HF_ENDPOINT replaces https://huggingface.co`;

export async function runModelCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: { dest: { type: 'string' }, revision: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    console.error(`vlcache model: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals[0] !== 'download' || positionals.length !== 2) {
    console.error(`vlcache model: ${positionals.length === 0 ? 'a subcommand is needed' : `unknown: ${positionals.join(' ')}`}\n${USAGE}`);
    return 2;
  }
  const bar = progressPrinter();
  try {
    const r = await downloadModel(positionals[1], values.dest ?? join(homedir(), 'models'), {
      hub: hubOptionsFromEnv(), revision: values.revision, onProgress: bar,
    });
    bar.end();
    if (values.json) console.log(JSON.stringify(r, null, 2));
    else {
      console.error(`${r.repo}@${r.commit.slice(0, 10)} (${r.modelType}): ${r.files.length} files checked, ${mib(r.fetchedBytes)} of ${mib(r.totalBytes)} MiB fetched now`);
      console.log(r.dir);
    }
    return 0;
  } catch (e) {
    bar.end();
    console.error(`vlcache model download: ${(e as Error).message}`);
    return 1;
  }
}

const mib = (n: number): string => (n / 2 ** 20).toFixed(1);

/** A line redrawn in place on a terminal; a line per file and per 10% otherwise. */
function progressPrinter(): ((p: ModelDownloadProgress) => void) & { end(): void } {
  const tty = process.stderr.isTTY;
  let lastKey = '';
  let drawn = false;
  const f = (p: ModelDownloadProgress): void => {
    const pct = p.total ? Math.floor((100 * p.bytes) / p.total) : 0;
    const line = `  ${mib(p.bytes)} / ${mib(p.total)} MiB (${pct}%) ${p.file}${p.resumed ? `, ${mib(p.resumed)} MiB already here` : ''}`;
    if (tty) {
      process.stderr.write(`\r${line}\x1b[K`);
      drawn = true;
      return;
    }
    const key = `${p.file}:${Math.floor(pct / 10)}`;
    if (key !== lastKey) {
      lastKey = key;
      process.stderr.write(`${line}\n`);
    }
  };
  return Object.assign(f, { end: () => { if (drawn) process.stderr.write('\n'); drawn = false; } });
}
