/**
 * Where generated ONNX graphs live, and how they reach the checkpoint's weights.
 *
 * ONNX Runtime resolves external data relative to the .onnx file and refuses
 * paths that leave its folder (`..`, absolute paths, symlinks pointing outside;
 * Hugging Face hub snapshots are such symlinks). So a graph must sit in a folder
 * that contains the weight files themselves. We make one per checkpoint under
 * the vlcache cache root, holding hard links to the .safetensors files (no
 * copy, no extra disk), and fall back to writing the graphs into the model
 * folder when hard links are impossible (another filesystem).
 */
import { createHash } from 'node:crypto';
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, relative, isAbsolute } from 'node:path';
import type { WeightLookup, WeightRef } from '../../../kernels/graphs/common';

export interface WeightEntry {
  readonly dtype: 'BF16' | 'F16' | 'F32';
  readonly shape: readonly number[];
  /** Absolute path of the .safetensors file. */
  readonly file: string;
  /** Absolute byte offset of the tensor data in that file. */
  readonly offset: number;
  readonly byteLength: number;
}

export function cacheRoot(): string {
  if (process.env.VLCACHE_HOME) return process.env.VLCACHE_HOME;
  const xdg = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(xdg, 'vlcache');
}

/** What collecting graph folders freed. */
export interface GraphCollection {
  readonly nFolders: number;
  readonly bytes: number;
}

/**
 * Removes the graph folders of checkpoints that no longer exist: a folder whose weight links
 * all have a link count of 1 holds the only remaining name of those weights (the model was
 * deleted or replaced), so its links kept the deleted model's disk space in use (302 MB here).
 * A folder with a weight file still linked from a model folder is kept, and so is `keep`.
 * Never throws: a folder that cannot be read or removed is left for the next time.
 */
export function collectStaleGraphFolders(root = join(cacheRoot(), 'graphs'), keep?: string): GraphCollection {
  let nFolders = 0, bytes = 0;
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return { nFolders, bytes };
  }
  for (const name of names) {
    const dir = join(root, name);
    if (dir === keep || !/^[0-9a-f]{16}$/.test(name)) continue;
    try {
      const files = readdirSync(dir).map((f) => ({ f, st: lstatSync(join(dir, f)) }));
      const weights = files.filter(({ f, st }) => f.endsWith('.safetensors') && st.isFile());
      if (weights.length === 0 || weights.some(({ st }) => st.nlink > 1)) continue;
      const size = files.reduce((n, { st }) => n + (st.isFile() ? st.size : 0), 0);
      rmSync(dir, { recursive: true, force: true });
      nFolders++;
      bytes += size;
    } catch {
      // Unreadable or busy: try again next time.
    }
  }
  return { nFolders, bytes };
}

export class GraphFolder {
  private constructor(
    /** Folder the .onnx files are written to. */
    readonly dir: string,
    /** Absolute weight file path -> location relative to `dir`. */
    private readonly locations: Map<string, string>,
    private readonly weights: ReadonlyMap<string, WeightEntry>,
  ) {}

  /**
   * Prepares the graph folder for a checkpoint.
   * @throws Error with advice when neither a hard-linked folder nor the model folder can be used.
   */
  static open(modelDir: string, fingerprint: string, weights: ReadonlyMap<string, WeightEntry>): GraphFolder {
    const files = [...new Set([...weights.values()].map((w) => w.file))];
    const linked = join(cacheRoot(), 'graphs', fingerprint.slice(0, 16));
    try {
      mkdirSync(linked, { recursive: true, mode: 0o700 });
      const locations = new Map<string, string>();
      for (const f of files) {
        const real = realpathSync(f);
        const name = `${createHash('sha256').update(real).digest('hex').slice(0, 8)}-${basename(real)}`;
        const dst = join(linked, name);
        if (!existsSync(dst) || statSync(dst).ino !== statSync(real).ino) {
          const tmp = `${dst}.${process.pid}.tmp`;
          linkSync(real, tmp);
          renameSync(tmp, dst);
        }
        locations.set(f, name);
      }
      // Folders of deleted checkpoints go when another model is loaded (and on `vlcache cache clear`).
      collectStaleGraphFolders(join(cacheRoot(), 'graphs'), linked);
      return new GraphFolder(linked, locations, weights);
    } catch (linkErr) {
      // Another filesystem (EXDEV) or no permission: use the model folder itself.
      const locations = new Map<string, string>();
      const realModel = realpathSync(modelDir);
      for (const f of files) {
        const rel = relative(realModel, realpathSync(f));
        if (rel.startsWith('..') || isAbsolute(rel)) {
          throw new Error(
            `cannot place generated graphs next to the weights: ${f} resolves outside ${modelDir} ` +
              `(a Hugging Face cache snapshot?) and hard links into ${linked} failed (${(linkErr as Error).message}). ` +
              'Download the model with `hf download <repo> --local-dir <folder>` and point --model at that folder.');
        }
        locations.set(f, rel);
      }
      try {
        accessSync(modelDir, constants.W_OK);
      } catch {
        throw new Error(
          `cannot write generated graphs: ${linked} cannot hold hard links to the weights and ${modelDir} is read-only. ` +
            'Set VLCACHE_HOME to a folder on the same filesystem as the model.');
      }
      return new GraphFolder(modelDir, locations, weights);
    }
  }

  /** Weight lookup for graph builders, with locations relative to this folder. */
  get lookup(): WeightLookup {
    return (name: string): WeightRef | undefined => {
      const w = this.weights.get(name);
      if (!w) return undefined;
      return { dtype: w.dtype, shape: w.shape, location: this.locations.get(w.file)!, offset: w.offset, length: w.byteLength };
    };
  }

  /** Writes `bytes` as `<kind>-<hash>.onnx` unless that file exists; returns its path. */
  write(kind: string, bytes: Uint8Array): string {
    const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    const path = join(this.dir, `vlcache-${kind}-${hash}.onnx`);
    if (!existsSync(path)) {
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, bytes);
      renameSync(tmp, path);
    }
    return path;
  }
}
