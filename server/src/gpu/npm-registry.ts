/**
 * The npm registry, as npm itself is configured: where it is, and one version's
 * `dist` (tarball URL + integrity). Nothing is fetched from any other host.
 */
import { spawnSync } from 'node:child_process';

export const DEFAULT_REGISTRY = 'https://registry.npmjs.org/';

export interface Dist {
  readonly tarball: string;
  /** Subresource-integrity string, e.g. `sha512-<base64>`. */
  readonly integrity: string;
  readonly unpackedSize?: number;
}

export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

/**
 * The registry URL, with a trailing slash: `npm_config_registry` (any case, as npm reads
 * it), else `npm config get registry` when npm is on the PATH, else registry.npmjs.org.
 */
export function registryUrl(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = Object.entries(env).find(([k, v]) => k.toLowerCase() === 'npm_config_registry' && v)?.[1];
  if (fromEnv) return withSlash(fromEnv);
  const npm = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['config', 'get', 'registry'], {
    encoding: 'utf8', timeout: 15_000, env, shell: process.platform === 'win32',
  });
  const out = npm.status === 0 ? npm.stdout.trim() : '';
  return /^https?:\/\//.test(out) ? withSlash(out) : DEFAULT_REGISTRY;
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** `name@version`'s `dist` from the registry's (abbreviated) packument. */
export async function fetchDist(registry: string, name: string, version: string, signal?: AbortSignal): Promise<Dist> {
  const url = new URL(name.replace('/', '%2f'), registry).toString();
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8' },
      signal: signal ?? AbortSignal.timeout(60_000),
    });
  } catch (e) {
    throw new RegistryError(`cannot reach the npm registry at ${registry}: ${(e as Error).cause ?? (e as Error).message}`);
  }
  if (!res.ok) throw new RegistryError(`the npm registry answered ${res.status} for ${name} (${url})`);
  const doc = await res.json() as { versions?: Record<string, { dist?: Partial<Dist> }> };
  const dist = doc.versions?.[version]?.dist;
  if (!dist?.tarball) throw new RegistryError(`${name}@${version} is not on the registry at ${registry}`);
  const integrity = dist.integrity?.split(/\s+/).find((h) => h.startsWith('sha512-'));
  if (!integrity) throw new RegistryError(`${name}@${version} has no sha512 integrity on the registry; refusing to install it unchecked`);
  return { tarball: tarballOnRegistry(dist.tarball, registry), integrity, unpackedSize: dist.unpackedSize };
}

/**
 * The tarball URL on the configured registry. A URL on registry.npmjs.org is moved to the
 * configured registry (npm's default `replace-registry-host=npmjs`); any other host is refused.
 */
export function tarballOnRegistry(tarball: string, registry: string): string {
  const t = new URL(tarball);
  const r = new URL(registry);
  if (t.origin === r.origin) return t.toString();
  const npmjs = new URL(DEFAULT_REGISTRY);
  if (t.origin === npmjs.origin) return new URL(t.pathname.replace(/^\//, ''), r).toString();
  throw new RegistryError(`the registry points the tarball at another host (${t.origin}); only ${r.origin} is used`);
}
