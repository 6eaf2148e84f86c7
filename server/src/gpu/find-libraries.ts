/**
 * Where a shared library (by its soname, e.g. `libcublas.so.13`) can be found on Linux,
 * looking where the dynamic loader looks and where CUDA 13 usually lives:
 * LD_LIBRARY_PATH, the ldconfig cache, a CUDA toolkit (CUDA_HOME / CUDA_PATH /
 * /usr/local/cuda*), and NVIDIA's Python wheels (site-packages/nvidia/<pkg>/lib).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export type LibrarySource = 'LD_LIBRARY_PATH' | 'ldconfig' | 'CUDA toolkit' | 'Python wheel' | 'system';

export interface FoundLibrary {
  readonly soname: string;
  readonly path: string;
  readonly source: LibrarySource;
}

export interface SearchDir {
  readonly dir: string;
  readonly source: LibrarySource;
}

/** Folders to search, in the order the loader (then our preload) would use them. */
export function librarySearchDirs(env: NodeJS.ProcessEnv = process.env): SearchDir[] {
  const dirs: SearchDir[] = [];
  const add = (dir: string, source: LibrarySource): void => {
    if (dir && !dirs.some((d) => d.dir === dir) && existsSync(dir)) dirs.push({ dir, source });
  };
  for (const d of (env.LD_LIBRARY_PATH ?? '').split(':')) add(d, 'LD_LIBRARY_PATH');
  for (const root of [env.CUDA_HOME, env.CUDA_PATH, '/usr/local/cuda', ...globDirs('/usr/local', /^cuda-13/)]) {
    if (!root) continue;
    add(join(root, 'lib64'), 'CUDA toolkit');
    add(join(root, 'targets', 'x86_64-linux', 'lib'), 'CUDA toolkit');
  }
  for (const site of pythonSitePackages(env)) {
    for (const pkg of globDirs(join(site, 'nvidia'), /./)) add(join(pkg, 'lib'), 'Python wheel');
  }
  for (const d of ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/lib/wsl/lib']) add(d, 'system');
  return dirs;
}

/** The first file named `soname` in `dirs`, else in the ldconfig cache. */
export function findLibrary(soname: string, dirs: readonly SearchDir[], ldconfig: ReadonlyMap<string, string> = ldconfigCache()): FoundLibrary | undefined {
  for (const { dir, source } of dirs) {
    if (source === 'system') continue; // after ldconfig, as the loader does
    const p = join(dir, soname);
    if (existsSync(p)) return { soname, path: p, source };
  }
  const cached = ldconfig.get(soname);
  if (cached) return { soname, path: cached, source: 'ldconfig' };
  for (const { dir, source } of dirs) {
    const p = join(dir, soname);
    if (source === 'system' && existsSync(p)) return { soname, path: p, source };
  }
  return undefined;
}

let ldconfigMemo: Map<string, string> | undefined;

/** soname → path from `ldconfig -p` (x86-64 entries); empty where ldconfig is absent. */
export function ldconfigCache(): ReadonlyMap<string, string> {
  if (ldconfigMemo) return ldconfigMemo;
  ldconfigMemo = new Map();
  for (const bin of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    const r = spawnSync(bin, ['-p'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) continue;
    for (const line of r.stdout.split('\n')) {
      // "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1"
      const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)/.exec(line);
      if (m && (process.arch !== 'x64' || m[2].includes('x86-64')) && !ldconfigMemo.has(m[1])) ldconfigMemo.set(m[1], m[3]);
    }
    break;
  }
  return ldconfigMemo;
}

/** site-packages folders: the active virtualenv / conda env, then python3's own (when python3 runs). */
function pythonSitePackages(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const prefix of [env.VIRTUAL_ENV, env.CONDA_PREFIX]) {
    if (!prefix) continue;
    for (const py of globDirs(join(prefix, 'lib'), /^python3/)) out.push(join(py, 'site-packages'));
  }
  const r = spawnSync('python3', ['-c', 'import site,sys; print("\\n".join(site.getsitepackages() + [site.getusersitepackages()]))'], {
    encoding: 'utf8', timeout: 10_000, env,
  });
  if (r.status === 0) out.push(...r.stdout.split('\n').map((s) => s.trim()).filter(Boolean));
  return [...new Set(out)].filter((d) => existsSync(d));
}

function globDirs(parent: string, re: RegExp): string[] {
  try {
    return readdirSync(parent, { withFileTypes: true }).filter((e) => (e.isDirectory() || e.isSymbolicLink()) && re.test(e.name)).map((e) => join(parent, e.name));
  } catch {
    return [];
  }
}
