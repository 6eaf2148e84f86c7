/**
 * The hover explanations file is read as one regular file (issue 9 item 4): a FIFO planted in the cache folder in
 * its place is ignored with a log line instead of blocking the daemon's start forever.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXPLANATIONS_FILE, Explanations } from '../../../server/src/hover/explanations';

describe('explanations file', () => {
  it('is ignored, with one log line, when a FIFO stands in its place', { timeout: 10_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'vlcache-explanations-'));
    try {
      execFileSync('mkfifo', [join(dir, EXPLANATIONS_FILE)]);
      const logs: string[] = [];
      const ex = new Explanations(dir, 'recipe', (m) => logs.push(m));
      assert.equal(ex.get('anything'), undefined);
      assert.equal(logs.length, 1);
      assert.match(logs[0], /not a regular file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
