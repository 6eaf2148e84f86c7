/**
 * Entry files replaced behind the disk tier's back by things that are not entry files: a FIFO
 * (reading it would block the daemon), a link to /dev/zero (it took 5.6 GB in 25 s), a file
 * longer than its header says. Each is dropped on read, never read past its header.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, lstatSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DiskTier } from '../../../server/src/cache/disk-tier';
import { verifyCacheDir } from '../../../server/src/cache/disk-dir';
import { entry, key, MODEL, recordingLog, tempDir } from './helpers';

async function tierWith(name: string): Promise<{ dir: string; t: DiskTier; lines: string[]; path: string }> {
  const dir = tempDir();
  const rec = recordingLog();
  const t = new DiskTier({ dir, budgetBytes: 1 << 20, modelFingerprint: MODEL, log: rec.log });
  t.put(entry(name, 1000));
  await t.flush();
  return { dir, t, lines: rec.lines, path: join(dir, `${key(name)}.vlc`) };
}

describe('disk tier on hostile entry files', () => {
  const replacements: [string, (path: string) => void, RegExp][] = [
    ['a FIFO', (p) => { rmSync(p); execFileSync('mkfifo', [p]); }, /not a regular file/],
    ['a link to /dev/zero', (p) => { rmSync(p); symlinkSync('/dev/zero', p); }, /not a regular file/],
    ['a file longer than its header says', (p) => appendFileSync(p, Buffer.alloc(4096)), /size-mismatch/],
  ];
  for (const [what, replace, reason] of replacements) {
    it(`drops ${what} on read without reading it`, async () => {
      const { t, lines, path } = await tierWith('a');
      replace(path);
      assert.equal(t.get(key('a')), undefined);
      assert.equal(lines.length, 1);
      assert.match(lines[0], reason);
      assert.equal(existsSync(path) || (() => { try { lstatSync(path); return true; } catch { return false; } })(), false);
      assert.equal(t.get(key('a')), undefined);
    });
  }

  it('verify reports a FIFO entry as unusable instead of hanging', async () => {
    const { dir, path } = await tierWith('b');
    rmSync(path);
    execFileSync('mkfifo', [path]);
    const report = verifyCacheDir(dir, { modelFingerprint: MODEL });
    assert.equal(report.nDropped, 1);
  });
});
