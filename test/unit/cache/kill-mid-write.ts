/**
 * Child process for disk-tier.test.ts: writes entry `a` (seed 1) durably, then starts writing `a` (seed 2) and is
 * killed with SIGKILL after the temp file is complete and before the rename, like a daemon killed mid-write.
 * Usage: node --import tsx kill-mid-write.ts DIR
 */
import { DiskTier } from '../../../server/src/cache/disk-tier';
import { entry } from './helpers';

async function main(dir: string): Promise<void> {
  const first = new DiskTier({ dir, budgetBytes: 1 << 20, modelFingerprint: 'qwen2-vl-test-fingerprint', log: () => undefined });
  first.put(entry('a', 4096, { seed: 1 }));
  await first.flush();
  const second = new DiskTier({
    dir, budgetBytes: 1 << 20, modelFingerprint: 'qwen2-vl-test-fingerprint', log: () => undefined,
    beforeRename: () => { process.kill(process.pid, 'SIGKILL'); },
  });
  second.put(entry('a', 4096, { seed: 2 }));
  await second.flush();
  console.log('not killed');
}

void main(process.argv[2]);
