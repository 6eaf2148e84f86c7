/**
 * The protocol's documentation moves with the protocol: a change to any file in
 * server/src/protocol/ must come with an update of its README (rust-analyzer's
 * lsp_ext hash check).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const DIR = join(__dirname, '..', '..', '..', 'server', 'src', 'protocol');

describe('protocol documentation', () => {
  it('records the hash of the current protocol sources', () => {
    const h = createHash('sha256');
    for (const f of readdirSync(DIR).filter((f) => f.endsWith('.ts')).sort()) h.update(readFileSync(join(DIR, f)));
    const hash = h.digest('hex').slice(0, 16);
    const recorded = /<!-- protocol-hash: ([0-9a-f]+) -->/.exec(readFileSync(join(DIR, 'README.md'), 'utf8'))?.[1];
    assert.equal(recorded, hash,
      `server/src/protocol changed: update server/src/protocol/README.md (the messages table) and its hash to ${hash}`);
  });
});
