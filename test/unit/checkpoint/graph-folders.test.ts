/**
 * Graph folders (engine/graph-files.ts) hold hard links to a checkpoint's weights. Once the
 * checkpoint is deleted, the link is the weights' last name and kept their space in use (302 MB
 * here, and `cache clear` did not touch it); such folders are collected, the others kept.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { collectStaleGraphFolders } from '../../../server/src/engine/graph-files';
import { tempDir } from './helpers';

/** A graph folder `name` linking `weights` (the model's file), with one generated graph. */
function graphFolder(root: string, name: string, weights: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.linkSync(weights, path.join(dir, `0123abcd-${path.basename(weights)}`));
  fs.writeFileSync(path.join(dir, 'vlcache-llm-float32-0000000000000000.onnx'), Buffer.alloc(1000));
  return dir;
}

describe('collectStaleGraphFolders', () => {
  it('removes the folders of deleted checkpoints, says what it freed, and keeps the rest', () => {
    const top = tempDir();
    const root = path.join(top, 'graphs');
    const model = (name: string, bytes: number) => {
      fs.mkdirSync(path.join(top, name));
      const f = path.join(top, name, 'model.safetensors');
      fs.writeFileSync(f, Buffer.alloc(bytes));
      return f;
    };
    const live = model('live', 5000);
    const gone = model('gone', 7000);
    const keptLive = graphFolder(root, 'aaaaaaaaaaaaaaaa', live);
    const stale = graphFolder(root, 'bbbbbbbbbbbbbbbb', gone);
    const staleButKept = graphFolder(root, 'cccccccccccccccc', gone);
    fs.mkdirSync(path.join(root, 'not-ours'));
    fs.rmSync(path.join(top, 'gone'), { recursive: true });
    // 'gone' is now linked from two graph folders (link count 2): neither is the last name yet.
    assert.deepEqual(collectStaleGraphFolders(root), { nFolders: 0, bytes: 0 });
    fs.rmSync(staleButKept, { recursive: true });
    assert.deepEqual(collectStaleGraphFolders(root, keptLive), { nFolders: 1, bytes: 7000 + 1000 });
    assert.equal(fs.existsSync(stale), false);
    assert.equal(fs.existsSync(keptLive), true);
    assert.equal(fs.existsSync(path.join(root, 'not-ours')), true);
    // The folder being opened is never collected, even when its model is gone.
    fs.rmSync(path.join(top, 'live'), { recursive: true });
    assert.deepEqual(collectStaleGraphFolders(root, keptLive), { nFolders: 0, bytes: 0 });
    assert.deepEqual(collectStaleGraphFolders(root), { nFolders: 1, bytes: 5000 + 1000 });
    assert.deepEqual(collectStaleGraphFolders(path.join(top, 'missing')), { nFolders: 0, bytes: 0 });
  });
});
