import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runCacheCommand } from '../../../server/src/cli/cache';
import { DiskTier } from '../../../server/src/cache/disk-tier';
import { encodeEntry } from '../../../server/src/cache/disk-format';
import { entry, key, MODEL, tempDir } from './helpers';

/** Runs `vlcache cache …` in-process and captures what it prints. */
async function cache(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  try {
    const code = await runCacheCommand(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** A cache directory with 2 kv + 1 encoder entries of MODEL, 1 kv entry of another model, and a damaged file. */
async function populated(): Promise<string> {
  const dir = tempDir();
  const mine = new DiskTier({ dir, budgetBytes: 1 << 20, modelFingerprint: MODEL, log: () => undefined });
  mine.put(entry('a', 1000));
  mine.put(entry('b', 1000));
  mine.put(entry('c', 400, { kind: 'encoder' }));
  mine.put(entry('d', 1000));
  await mine.flush();
  const other = new DiskTier({ dir, budgetBytes: 1 << 20, modelFingerprint: 'other-model', log: () => undefined });
  other.put(entry('e', 1000, { model: 'other-model' }));
  await other.flush();
  truncateSync(join(dir, `${key('d')}.vlc`), 100);
  writeFileSync(join(dir, 'keep-me.txt'), 'not a cache file');
  return dir;
}

const size = (n: number, o?: Parameters<typeof entry>[2]) => encodeEntry(entry('a', n, o)).length;

describe('vlcache cache', () => {
  it('stats: counts entries and bytes by kind and model from the headers', async () => {
    const dir = await populated();
    const r = await cache('stats', '--cache-dir', dir, '--json');
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.equal(s.nEntries, 4);
    assert.deepEqual(s.groups, [
      { kind: 'encoder', modelFingerprint: MODEL, nEntries: 1, bytes: size(400, { kind: 'encoder' }) },
      { kind: 'kv', modelFingerprint: 'other-model', nEntries: 1, bytes: size(1000, { model: 'other-model' }) },
      { kind: 'kv', modelFingerprint: MODEL, nEntries: 2, bytes: 2 * size(1000) },
    ]);
    assert.deepEqual(s.damaged, { nFiles: 1, bytes: 100, reasons: { truncated: 1 } });
    const text = await cache('stats', '--cache-dir', dir);
    assert.match(text.out, /^4 entries, /m);
    assert.match(text.out, /1 damaged file, 100 B \(1 truncated\)/);
    assert.ok(existsSync(join(dir, `${key('d')}.vlc`)), 'stats changes nothing');
  });

  it('verify: reads every file, drops the damaged one, keeps every intact one', async () => {
    const dir = await populated();
    const r = await cache('verify', '--cache-dir', dir, '--json');
    assert.equal(r.code, 0, r.err);
    const v = JSON.parse(r.out);
    assert.deepEqual([v.nChecked, v.nOk, v.nDropped], [5, 4, 1]);
    assert.deepEqual(v.dropped.map((d: { name: string; reason: string; removed: boolean }) => [d.name, d.reason, d.removed]), [[`${key('d')}.vlc`, 'truncated', true]]);
    assert.equal(readdirSync(dir).length, 5);
    const again = await cache('verify', '--cache-dir', dir);
    assert.match(again.out, /checked 4 files in .*: 4 ok, 0 dropped/);
  });

  it('clear: removes every entry file and says how much, leaving other files alone', async () => {
    const dir = await populated();
    const before = readdirSync(dir).filter((n) => n.endsWith('.vlc')).length;
    assert.equal(before, 5);
    const r = await cache('clear', '--cache-dir', dir, '--json');
    assert.equal(r.code, 0, r.err);
    const c = JSON.parse(r.out);
    assert.equal(c.nRemoved, 5);
    assert.equal(c.bytesRemoved, 2 * size(1000) + size(400, { kind: 'encoder' }) + size(1000, { model: 'other-model' }) + 100);
    assert.deepEqual(readdirSync(dir), ['keep-me.txt']);
  });

  it('says what is wrong with the arguments or the directory', async () => {
    const missing = await cache('stats', '--cache-dir', join(tempDir(), 'nope'));
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no cache directory at .*nope \(it does not exist\); check --cache-dir/);
    const noDir = await cache('stats');
    assert.equal(noDir.code, 2);
    assert.match(noDir.err, /cache needs --cache-dir DIR/);
    const unknown = await cache('purge', '--cache-dir', tempDir());
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown cache subcommand 'purge'/);
    const badOption = await cache('stats', '--cache-dir', tempDir(), '--force');
    assert.equal(badOption.code, 2);
  });

  it('is wired into the vlcache command line', async () => {
    const dir = await populated();
    const root = resolve(__dirname, '../../..');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'server/src/cli/main.ts'), 'cache', 'stats', '--cache-dir', dir, '--json'], { encoding: 'utf8', cwd: root });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).nEntries, 4);
  });
});
