/**
 * The read-only directory case of disk-tier.test.ts: a tier fills `dir`, the directory is made read-only
 * (0500), and a new tier over it must still read what exists, and turn its writes off saying why, once.
 * Root writes through 0500, so under root the test runs this file as the unprivileged user `nobody`:
 *   node --import tsx read-only-dir.ts DIR   (prints the outcome as one JSON line)
 */
import { chmodSync } from 'node:fs';
import { DiskTier } from '../../../server/src/cache/disk-tier';
import { entry, key, MODEL } from './helpers';

export interface ReadOnlyOutcome {
  /** Whether the entry written before the chmod was read back. */
  readOk: boolean;
  /** What the second tier logged. */
  lines: string[];
}

export async function readOnlyScenario(dir: string): Promise<ReadOnlyOutcome> {
  const first = new DiskTier({ dir, budgetBytes: 1 << 20, modelFingerprint: MODEL, log: () => undefined });
  first.put(entry('a', 100));
  await first.flush();
  chmodSync(dir, 0o500);
  try {
    const lines: string[] = [];
    const t = new DiskTier({ dir, budgetBytes: 1 << 20, modelFingerprint: MODEL, log: (m) => lines.push(m) });
    const readOk = t.get(key('a')) !== undefined;
    t.put(entry('b', 100));
    await t.flush();
    return { readOk, lines };
  } finally {
    chmodSync(dir, 0o700);
  }
}

if (require.main === module) void readOnlyScenario(process.argv[2]).then((o) => console.log(JSON.stringify(o)));
