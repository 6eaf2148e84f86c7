import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskTier, type DiskTierParams } from '../../../server/src/cache/disk-tier';
import { encodeEntry } from '../../../server/src/cache/disk-format';
import { entry, key, MODEL, recordingLog, snapshot, tempDir } from './helpers';
import { readOnlyScenario, type ReadOnlyOutcome } from './read-only-dir';

/** The unprivileged user (and group) of Linux systems. */
const NOBODY = 65534;

function tier(dir: string, more: Partial<DiskTierParams> = {}): DiskTier & { lines: string[]; evicted: string[] } {
  const rec = recordingLog();
  const evicted: string[] = [];
  const t = new DiskTier({ dir, budgetBytes: 1 << 20, modelFingerprint: MODEL, log: rec.log, onEvict: (ev) => evicted.push(ev.key), ...more });
  return Object.assign(t, { lines: rec.lines, evicted });
}

const file = (dir: string, name: string) => join(dir, `${key(name)}.vlc`);
// Every fixture entry of the same payload size encodes to the same number of file bytes.
const FILE_BYTES = encodeEntry(entry('a', 1000)).length;

describe('disk tier', () => {
  it('writes one 0600 file per entry in a 0700 directory and reads back identical bytes', async () => {
    const dir = join(tempDir(), 'workspace', 'cache');
    const t = tier(dir);
    const e = entry('a', 1000);
    t.put(e);
    await t.flush();
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(file(dir, 'a')).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), [`${key('a')}.vlc`]);
    assert.deepEqual(snapshot(t.get(key('a'))!), snapshot(e));
    assert.deepEqual(snapshot(tier(dir).get(key('a'), 'kv')!), snapshot(e));
    assert.deepEqual(t.lines, []);
  });

  it('rebuilds its index at start from the headers alone', async () => {
    const dir = tempDir();
    const t = tier(dir);
    for (const n of ['a', 'b', 'c']) t.put(entry(n, 1000));
    await t.flush();
    // Damage b's tensor bytes: a header-only scan cannot see it, a read must.
    const b = readFileSync(file(dir, 'b'));
    b[b.length - 10] ^= 0xff;
    writeFileSync(file(dir, 'b'), b);
    const t2 = tier(dir);
    assert.deepEqual(t2.keys().sort(), [key('a'), key('b'), key('c')]);
    assert.equal(t2.stats().nEntries, 3);
    assert.equal(t2.stats().bytes, 3 * FILE_BYTES);
    assert.equal(t2.get(key('b')), undefined);
    assert.equal(existsSync(file(dir, 'b')), false);
    assert.equal(t2.lines.length, 1);
    assert.match(t2.lines[0], /dropped .*\.vlc \(data-checksum/);
    assert.ok(t2.get(key('a')) && t2.get(key('c')));
  });

  it('evicts the least recently used files first to stay within its byte budget', async () => {
    const dir = tempDir();
    const t = tier(dir, { budgetBytes: 3 * FILE_BYTES + 10 }); // room for three files
    for (const n of ['a', 'b', 'c']) t.put(entry(n, 1000));
    await t.flush();
    t.get(key('a')); // order now b, c, a
    t.put(entry('d', 1000));
    await t.flush();
    assert.deepEqual(t.evicted, [key('b')]);
    t.touch(key('c')); // an access through a higher tier counts too: order a, d, c
    t.put(entry('e', 1000));
    t.put(entry('f', 1000));
    await t.flush();
    assert.deepEqual(t.evicted, [key('b'), key('a'), key('d')]);
    assert.deepEqual(readdirSync(dir).sort(), [key('c'), key('e'), key('f')].map((k) => `${k}.vlc`).sort());
    assert.equal(t.stats().bytes, 3 * FILE_BYTES);
  });

  it('keeps the LRU order across a restart (access times persist as file times)', async () => {
    const dir = tempDir();
    const t = tier(dir, { budgetBytes: 3 * FILE_BYTES + 10 });
    for (const n of ['a', 'b', 'c']) t.put(entry(n, 1000));
    await t.flush();
    t.get(key('a'));
    t.get(key('b'));
    const t2 = tier(dir, { budgetBytes: 3 * FILE_BYTES + 10 });
    assert.deepEqual(t2.keys(), [key('c'), key('a'), key('b')]);
    t2.put(entry('d', 1000));
    await t2.flush();
    assert.deepEqual(t2.evicted, [key('c')]);
  });

  it('shrinks an over-budget directory at start', async () => {
    const dir = tempDir();
    const t = tier(dir);
    for (const n of ['a', 'b', 'c']) t.put(entry(n, 1000));
    await t.flush();
    const t2 = tier(dir, { budgetBytes: FILE_BYTES });
    assert.deepEqual(t2.evicted, [key('a'), key('b')]);
    assert.deepEqual(t2.keys(), [key('c')]);
  });

  it('does not write an entry larger than its budget', async () => {
    const dir = tempDir();
    const t = tier(dir, { budgetBytes: FILE_BYTES });
    t.put(entry('a', 1000));
    t.put(entry('b', 2000));
    await t.flush();
    assert.deepEqual(readdirSync(dir), [`${key('a')}.vlc`]);
    assert.deepEqual(t.evicted, []);
  });

  it('lets the last of several puts of one key win, and a delete cancel a queued write', async () => {
    const dir = tempDir();
    const t = tier(dir);
    t.put(entry('a', 1000, { seed: 1 }));
    t.put(entry('a', 1000, { seed: 2 }));
    t.put(entry('b', 1000));
    t.delete(key('b'));
    await t.flush();
    assert.deepEqual(snapshot(t.get(key('a'))!), snapshot(entry('a', 1000, { seed: 2 })));
    assert.equal(existsSync(file(dir, 'b')), false);
    assert.deepEqual(readdirSync(dir), [`${key('a')}.vlc`]);
  });

  it('finds a file another process wrote after its start', async () => {
    const dir = tempDir();
    const reader = tier(dir);
    const writer = tier(dir);
    writer.put(entry('a', 100));
    await writer.flush();
    assert.equal(reader.has(key('a')), false);
    assert.deepEqual(snapshot(reader.get(key('a'))!), snapshot(entry('a', 100)));
    assert.equal(reader.has(key('a')), true);
  });

  describe('killed writes', () => {
    it('removes a half-written temp file of a dead process at start and never reads it', () => {
      const dir = tempDir();
      const whole = encodeEntry(entry('a', 1000));
      const temp = join(dir, `.${key('a')}.vlc.4206649.0badf00d.tmp`); // pid above Linux's pid_max: not running
      writeFileSync(temp, whole.subarray(0, 500));
      const live = join(dir, `.${key('b')}.vlc.${process.pid}.0badf00d.tmp`); // a live writer's temp is left alone
      writeFileSync(live, whole.subarray(0, 500));
      const t = tier(dir);
      assert.equal(existsSync(temp), false);
      assert.equal(existsSync(live), true);
      assert.equal(t.get(key('a')), undefined);
      assert.equal(t.stats().nEntries, 0);
    });

    it('drops a truncated entry file at start (a write that lost its tail)', async () => {
      const dir = tempDir();
      const t = tier(dir);
      t.put(entry('a', 1000));
      t.put(entry('b', 1000));
      await t.flush();
      truncateSync(file(dir, 'a'), FILE_BYTES - 100);
      const t2 = tier(dir);
      assert.equal(t2.has(key('a')), false);
      assert.equal(t2.get(key('a')), undefined);
      assert.equal(existsSync(file(dir, 'a')), false);
      assert.deepEqual(t2.lines, [`disk cache: dropped 1 damaged file in ${dir} (1 truncated); they will be recomputed`]);
      assert.ok(t2.get(key('b')));
    });

    it('leaves the old entry intact when a process is killed between fsync and rename', () => {
      const dir = tempDir();
      const child = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'kill-mid-write.ts'), dir], { encoding: 'utf8' });
      assert.equal(child.signal, 'SIGKILL', child.stderr);
      assert.equal(readdirSync(dir).filter((n) => n.endsWith('.tmp')).length, 1, 'the killed write left its temp file');
      const t = tier(dir);
      assert.deepEqual(snapshot(t.get(key('a'))!), snapshot(entry('a', 4096, { seed: 1 })));
      assert.deepEqual(readdirSync(dir), [`${key('a')}.vlc`]);
    });
  });

  describe('bad files', () => {
    // Each damage is made after the index was built, so that it is met by a read, not by the start-up scan.
    const damages: [string, (f: string) => void, RegExp][] = [
      ['a changed byte', (f) => { const b = readFileSync(f); b[b.length - 1] ^= 1; writeFileSync(f, b); }, /data-checksum/],
      ['a truncated file', (f) => truncateSync(f, 77), /truncated/],
      ['a wrong magic', (f) => { const b = readFileSync(f); b.write('NOTCACHE', 0, 'latin1'); writeFileSync(f, b); }, /bad-magic/],
      ['an empty file', (f) => writeFileSync(f, ''), /truncated/],
    ];
    for (const [what, damage, reason] of damages) {
      it(`rejects ${what} on read: deleted, logged once, never thrown`, async () => {
        const dir = tempDir();
        const t = tier(dir);
        t.put(entry('a', 1000));
        await t.flush();
        damage(file(dir, 'a'));
        assert.equal(t.get(key('a')), undefined);
        assert.equal(t.get(key('a')), undefined);
        assert.equal(existsSync(file(dir, 'a')), false);
        assert.equal(t.lines.length, 1);
        assert.match(t.lines[0], reason);
        assert.equal(t.stats().nDropped, 1);
      });
    }

    it('never serves a file of another model, and keeps it for that model', async () => {
      const dir = tempDir();
      const other = tier(dir, { modelFingerprint: 'another-model' });
      other.put(entry('a', 1000, { model: 'another-model' }));
      await other.flush();
      const t = tier(dir);
      assert.equal(t.has(key('a')), false);
      assert.equal(t.get(key('a')), undefined);
      assert.deepEqual(t.stats().foreign, { nEntries: 1, bytes: encodeEntry(entry('a', 1000, { model: 'another-model' })).length });
      assert.equal(existsSync(file(dir, 'a')), true);
      assert.ok(tier(dir, { modelFingerprint: 'another-model' }).get(key('a')));
      const r = t.verify();
      assert.deepEqual([r.nChecked, r.nOk, r.nForeign, r.nDropped], [1, 0, 1, 0]);
      assert.deepEqual(t.lines, []);
    });

    it('verify re-reads every file, drops the bad ones and keeps the rest', async () => {
      const dir = tempDir();
      const t = tier(dir);
      for (const n of ['a', 'b', 'c']) t.put(entry(n, 1000));
      await t.flush();
      truncateSync(file(dir, 'b'), 500);
      writeFileSync(join(dir, 'notes.txt'), 'not ours');
      const r = t.verify();
      assert.deepEqual([r.nChecked, r.nOk, r.nForeign, r.nDropped], [3, 2, 0, 1]);
      assert.deepEqual(r.files.filter((f) => f.status === 'dropped').map((f) => [f.key, f.failure!.reason]), [[key('b'), 'truncated']]);
      assert.deepEqual(readdirSync(dir).sort(), ['notes.txt', `${key('a')}.vlc`, `${key('c')}.vlc`].sort());
      assert.equal(t.has(key('b')), false);
    });
  });

  describe('a directory it cannot write', () => {
    it('serves without disk caching when the directory cannot be created, and says so once', async () => {
      const root = tempDir();
      writeFileSync(join(root, 'file'), 'a regular file');
      const t = tier(join(root, 'file', 'cache')); // mkdir fails with ENOTDIR, even as root
      t.put(entry('a', 100));
      t.put(entry('b', 100));
      await t.flush();
      assert.equal(t.get(key('a')), undefined);
      assert.equal(t.stats().enabled, false);
      assert.equal(t.lines.length, 1);
      assert.match(t.lines[0], /disk cache off: .*file\/cache is not a directory \(ENOTDIR\)/);
    });

    it('turns itself off when its directory goes away mid-session, says so once, and never throws', async () => {
      const dir = tempDir();
      const t = tier(dir);
      t.put(entry('a', 100));
      await t.flush();
      rmSync(dir, { recursive: true });
      writeFileSync(dir, 'the directory is now a file');
      t.put(entry('b', 100));
      await t.flush();
      t.put(entry('c', 100));
      await t.flush();
      assert.equal(t.stats().enabled, false);
      assert.equal(t.lines.length, 1);
      assert.match(t.lines[0], /ENOTDIR/);
      assert.equal(t.get(key('b')), undefined);
      rmSync(dir);
    });

    it('turns itself off on a full disk and keeps serving what it has', async () => {
      const dir = tempDir();
      const full = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      let failing = false;
      const t = tier(dir, { beforeRename: () => { if (failing) throw full; } });
      t.put(entry('a', 100));
      await t.flush();
      failing = true; // NOTE: a real ENOSPC needs a full file system; this is the one injected failure.
      t.put(entry('b', 100));
      await t.flush();
      t.put(entry('c', 100));
      await t.flush();
      assert.deepEqual(t.lines.length, 1);
      assert.match(t.lines[0], /disk cache off: .* is on a full disk \(ENOSPC\); answers are served without disk caching/);
      assert.deepEqual(readdirSync(dir), [`${key('a')}.vlc`], 'no temp file is left behind');
      assert.deepEqual(snapshot(t.get(key('a'))!), snapshot(entry('a', 100)));
    });

    it('serves without disk caching from a read-only directory', async () => {
      const dir = tempDir();
      let outcome: ReadOnlyOutcome;
      if (process.getuid?.() === 0) {
        // Root writes through 0500: run the scenario as the unprivileged user nobody, in its own directory.
        chownSync(dir, NOBODY, NOBODY);
        const child = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'read-only-dir.ts'), dir],
          { encoding: 'utf8', uid: NOBODY, gid: NOBODY, cwd: join(__dirname, '..', '..', '..'), env: { ...process.env, HOME: tmpdir() } });
        assert.equal(child.status, 0, child.stderr);
        outcome = JSON.parse(child.stdout);
      } else {
        outcome = await readOnlyScenario(dir);
      }
      assert.ok(outcome.readOk, 'what exists is still read');
      assert.equal(outcome.lines.length, 1, outcome.lines.join('\n'));
      assert.match(outcome.lines[0], /is not writable \(EACCES\)/);
    });
  });

  it('keeps two workspace directories apart', async () => {
    const one = tier(tempDir());
    const two = tier(tempDir());
    one.put(entry('a', 100));
    await one.flush();
    assert.equal(two.get(key('a')), undefined);
    assert.equal(two.has(key('a')), false);
  });

  it('leaves files that are not its own alone', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'README'), 'x');
    writeFileSync(join(dir, 'ABC.vlc'), 'not a key name');
    const t = tier(dir);
    t.put(entry('a', 100));
    await t.flush();
    t.clear();
    assert.deepEqual(readdirSync(dir).sort(), ['ABC.vlc', 'README', 'sub']);
    assert.deepEqual(t.lines, []);
  });
});
