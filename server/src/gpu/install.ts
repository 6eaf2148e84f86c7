/**
 * `vlcache gpu install cuda`: the provider package from the npm registry into the
 * per-user install folder. Steps: the registry's `dist` → resumable download checked
 * against `dist.integrity` (sha512) → the needed files extracted into a temp folder beside
 * the install folder → manifest written → one rename. A reader therefore sees the old
 * install, the new one, or none — never a half-written one.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { download, type DownloadProgress } from './download';
import { fetchDist, registryUrl } from './npm-registry';
import { MANIFEST, installDir, installState, providersRoot, type InstallManifest, type ProviderPackage } from './provider-package';
import { extractTgz } from './tgz';

export type InstallPhase = 'resolve' | 'download' | 'verify' | 'extract' | 'done';

export interface InstallProgress {
  readonly phase: InstallPhase;
  readonly message: string;
  /** During 'download'. */
  readonly download?: DownloadProgress;
}

export interface InstallOptions {
  readonly onProgress?: (p: InstallProgress) => void;
  readonly signal?: AbortSignal;
  /** Reinstall even when a whole install is present. */
  readonly force?: boolean;
  /** Registry URL; default: npm's configuration (see `registryUrl`). */
  readonly registry?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Keep the downloaded tarball (in `<providers>/downloads/`) after a good install. */
  readonly keepTarball?: boolean;
  readonly stallMs?: number;
}

export interface InstallResult {
  readonly dir: string;
  readonly manifest: InstallManifest;
  /** False when a whole install was already there and nothing was downloaded. */
  readonly changed: boolean;
  readonly registry: string;
}

export async function installProvider(pkg: ProviderPackage, opts: InstallOptions = {}): Promise<InstallResult> {
  const env = opts.env ?? process.env;
  const report = (phase: InstallPhase, message: string, dl?: DownloadProgress): void => opts.onProgress?.({ phase, message, download: dl });
  const registry = opts.registry ?? registryUrl(env);
  const state = installState(pkg, env);
  if (state.installed && !opts.force) {
    report('done', `already installed in ${state.dir}`);
    return { dir: state.dir, manifest: state.manifest, changed: false, registry };
  }
  report('resolve', `looking up ${pkg.npmName}@${pkg.npmVersion} on ${registry}`);
  const dist = await fetchDist(registry, pkg.npmName, pkg.npmVersion, opts.signal);

  const root = providersRoot(env);
  const downloads = join(root, 'downloads');
  mkdirSync(downloads, { recursive: true, mode: 0o700 });
  const unlock = lockInstall(join(downloads, `${pkg.npmName}.lock`));
  try {
    return await downloadAndPlace(pkg, dist, root, downloads, env, opts, report, registry);
  } finally {
    unlock();
  }
}

async function downloadAndPlace(pkg: ProviderPackage, dist: { tarball: string; integrity: string }, root: string, downloads: string,
  env: NodeJS.ProcessEnv, opts: InstallOptions, report: (phase: InstallPhase, message: string, dl?: DownloadProgress) => void,
  registry: string): Promise<InstallResult> {
  // Under the lock no other install runs: temp and moved-aside folders left by a killed one can go.
  for (const e of readdirSync(root)) if (/^\.tmp-|\.old-[0-9a-f]+$/.test(e)) rmSync(join(root, e), { recursive: true, force: true });
  const tgz = join(downloads, `${pkg.npmName}-${pkg.npmVersion}.tgz`);
  report('download', `downloading ${dist.tarball}`);
  await download(dist.tarball, tgz, dist.integrity, {
    signal: opts.signal,
    stallMs: opts.stallMs,
    onProgress: (p) => report('download', 'downloading', p),
  });
  report('verify', `sha512 matches the registry's integrity (${dist.integrity.slice(0, 20)}…)`);

  const tmp = join(root, `.tmp-${pkg.provider}-${randomBytes(6).toString('hex')}`);
  mkdirSync(tmp, { mode: 0o755 });
  try {
    report('extract', `extracting ${Object.values(pkg.files).join(', ')}`);
    const files = await extractTgz(tgz, pkg.files, tmp);
    const manifest: InstallManifest = {
      npmName: pkg.npmName, npmVersion: pkg.npmVersion, ortVersion: pkg.ortVersion,
      integrity: dist.integrity, tarball: dist.tarball, files, installedAt: new Date().toISOString(),
    };
    writeFileSync(join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    const dir = installDir(pkg, env);
    replaceDir(tmp, dir);
    if (!opts.keepTarball) rmSync(tgz, { force: true });
    report('done', `installed in ${dir}`);
    return { dir, manifest, changed: true, registry };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export class InstallBusyError extends Error {
  constructor(readonly pid: number) {
    super(`another install of the provider is running (process ${pid}); wait for it to finish`);
    this.name = 'InstallBusyError';
  }
}

/**
 * One install at a time per user (daemons of several windows, the CLI): a lock file made
 * with O_EXCL holding the owner's pid; a lock whose process is gone is taken over.
 * @returns the release function.
 * @throws InstallBusyError while a live process holds it.
 */
function lockInstall(path: string): () => void {
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw new InstallBusyError(pid);
      if (pid === process.pid) throw new InstallBusyError(pid);
      rmSync(path, { force: true }); // its owner is gone
    }
  }
  throw new Error(`cannot take the install lock ${path}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Puts `from` at `to` by rename; an existing `to` is moved aside first and removed after. */
function replaceDir(from: string, to: string): void {
  if (!existsSync(to)) {
    renameSync(from, to);
    return;
  }
  // NOTE: a process that loaded the old provider keeps its mapped files; unlinking them is safe on POSIX.
  const old = `${to}.old-${randomBytes(6).toString('hex')}`;
  renameSync(to, old);
  renameSync(from, to);
  rmSync(old, { recursive: true, force: true });
}

/** Removes the install (for `vlcache gpu uninstall cuda`); a no-op when absent. */
export function uninstallProvider(pkg: ProviderPackage, env: NodeJS.ProcessEnv = process.env): boolean {
  const dir = installDir(pkg, env);
  if (!existsSync(dir)) return false;
  const old = `${dir}.old-${randomBytes(6).toString('hex')}`;
  renameSync(dir, old);
  rmSync(old, { recursive: true, force: true });
  return true;
}
