/**
 * `extractTgz` on archives made by the system `tar` in three formats (ustar, GNU long
 * names, pax): the wanted entries come out byte for byte under the names given, nothing
 * else is written, and a truncated archive or a missing entry is an error.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractTgz } from '../../../server/src/gpu/tgz';

describe('extractTgz', () => {
  let work: string;
  const big = randomBytes(70_000); // not a multiple of 512: exercises the padding
  const longDir = `package/${'d'.repeat(90)}/${'e'.repeat(60)}`; // > 100 chars: needs a long-name record

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'vlcache-tgz-'));
    mkdirSync(join(work, 'src', longDir), { recursive: true });
    writeFileSync(join(work, 'src', longDir, 'lib.so'), big);
    writeFileSync(join(work, 'src', 'package', 'LICENSE'), 'MIT\n');
    writeFileSync(join(work, 'src', 'package', 'empty'), '');
    writeFileSync(join(work, 'src', 'package', 'other'), 'not wanted');
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const format of ['ustar', 'gnu', 'pax'] as const) {
    it(`extracts the wanted files of a ${format} archive and nothing else`, async () => {
      const tgz = join(work, `${format}.tgz`);
      const src = format === 'ustar' ? ['package/LICENSE', 'package/empty'] : ['package'];
      execFileSync('tar', [`--format=${format}`, '-czf', tgz, '-C', join(work, 'src'), ...src]);
      const out = mkdtempSync(join(work, 'out-'));
      const wanted: Record<string, string> = { 'package/LICENSE': 'LICENSE', 'package/empty': 'empty' };
      if (format !== 'ustar') wanted[`${longDir}/lib.so`] = 'lib.so';
      const written = await extractTgz(tgz, wanted, out);
      assert.deepEqual(readdirSync(out).sort(), Object.values(wanted).sort());
      assert.equal(readFileSync(join(out, 'LICENSE'), 'utf8'), 'MIT\n');
      assert.equal(written.empty, 0);
      if (format !== 'ustar') {
        assert.ok(readFileSync(join(out, 'lib.so')).equals(big));
        assert.equal(written['lib.so'], big.length);
      }
    });
  }

  it('rejects a truncated archive and a missing entry', async () => {
    const tgz = join(work, 'full.tgz');
    execFileSync('tar', ['-cf', join(work, 'full.tar'), '-C', join(work, 'src'), 'package']);
    const tar = readFileSync(join(work, 'full.tar'));
    writeFileSync(join(work, 'cut.tar'), tar.subarray(0, 40_000));
    writeFileSync(join(work, 'cut.tgz'), execFileSync('gzip', ['-c', join(work, 'cut.tar')]));
    writeFileSync(tgz, execFileSync('gzip', ['-c', join(work, 'full.tar')]));
    const out = mkdtempSync(join(work, 'out-'));
    await assert.rejects(extractTgz(join(work, 'cut.tgz'), { [`${longDir}/lib.so`]: 'lib.so' }, out), /truncated/);
    await assert.rejects(extractTgz(tgz, { 'package/absent': 'absent' }, out), /has no package\/absent/);
  });
});
