/**
 * A client for the Hugging Face hub's public URL layout: the file list of one revision
 * (`GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true`) and the files of one
 * commit (`GET {endpoint}/{repo}/resolve/{commit}/{rfilename}`, which the hub answers with a
 * 302 to a CDN for LFS files). Redirects are followed by hand so that (1) every hop is https
 * (plain http only to a loopback address, for tests) and (2) the token goes only to the hub's
 * own origin, never to the redirect host.
 */

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
const MAX_REDIRECTS = 10;

export interface HubOptions {
  /** The hub's origin (HF_ENDPOINT), without a trailing slash. */
  readonly endpoint: string;
  /** Sent as `Authorization: Bearer …` to `endpoint` only. */
  readonly token?: string;
}

/** One file of a revision. `sha256` is set for LFS files (weights), hex. */
export interface HubFile {
  readonly name: string;
  readonly size: number;
  readonly sha256?: string;
}

export interface HubRevision {
  /** The commit the revision resolved to; every file is fetched from this commit. */
  readonly commit: string;
  readonly files: readonly HubFile[];
}

export class HubError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'HubError';
  }
}

/** The endpoint and token from the environment (HF_ENDPOINT, HF_TOKEN), a setting's token first. */
export function hubOptionsFromEnv(env: NodeJS.ProcessEnv = process.env, token?: string): HubOptions {
  const endpoint = (env.HF_ENDPOINT?.trim() || DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  if (!URL.canParse(endpoint)) throw new HubError(`the hub endpoint ${JSON.stringify(endpoint)} is not a URL (e.g. https://huggingface.co)`);
  checkUrlAllowed(new URL(endpoint), 'the hub endpoint');
  const t = token?.trim() || env.HF_TOKEN?.trim() || undefined;
  return { endpoint, token: t };
}

/** `owner/name`, each part the hub's allowed characters; refuses `..` and slashes beyond one. */
export function checkRepoId(repo: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/.test(repo) || repo.includes('..')) {
    throw new HubError(`${JSON.stringify(repo)} is not a Hugging Face model id (owner/name, e.g. Qwen/Qwen2-VL-2B-Instruct)`);
  }
  return repo;
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '[::1]' || host === '::1' || host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** https anywhere; http only to a loopback address (the tests' local hub). */
export function checkUrlAllowed(url: URL, what: string): void {
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return;
  throw new HubError(`${what} ${url.origin} is not https; refusing to download over it`);
}

/**
 * fetch with the hub's policy: redirects followed by hand (https only, at most 10), the
 * token on requests to the endpoint's origin only.
 */
export function hubFetch(hub: HubOptions): (url: string, init: RequestInit) => Promise<Response> {
  const hubOrigin = new URL(hub.endpoint).origin;
  return async (url, init) => {
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      checkUrlAllowed(current, hop === 0 ? 'the hub' : 'the hub redirected to');
      const headers = new Headers(init.headers);
      if (hub.token && current.origin === hubOrigin) headers.set('authorization', `Bearer ${hub.token}`);
      else headers.delete('authorization');
      const res = await fetch(current, { ...init, headers, redirect: 'manual' });
      const location = res.headers.get('location');
      if (res.status < 300 || res.status > 399 || !location) return res;
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new HubError(`more than ${MAX_REDIRECTS} redirects from ${url}`);
      current = new URL(location, current);
    }
  };
}

/** The file list of `repo` at `revision` and the commit it resolved to. */
export async function listRevision(hub: HubOptions, repo: string, revision: string, signal?: AbortSignal): Promise<HubRevision> {
  const url = `${hub.endpoint}/api/models/${checkRepoId(repo)}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const res = await hubFetch(hub)(url, { signal, headers: { accept: 'application/json' } });
  if (!res.ok) {
    const hint = res.status === 401 || res.status === 403
      ? ' (a gated or private model: set HF_TOKEN or vlcache.huggingFaceToken to a token that may read it)'
      : res.status === 404 ? ' (no such model or revision on the hub)' : '';
    throw new HubError(`the hub answered ${res.status} for ${repo}@${revision}${hint}`, res.status);
  }
  const body = (await res.json()) as { sha?: unknown; siblings?: unknown };
  if (typeof body.sha !== 'string' || !/^[0-9a-f]{40}$/.test(body.sha) || !Array.isArray(body.siblings)) {
    throw new HubError(`the hub's answer for ${repo}@${revision} has no commit sha or file list`);
  }
  const files: HubFile[] = [];
  for (const s of body.siblings as Record<string, unknown>[]) {
    const name = s?.rfilename;
    const lfs = s?.lfs as { sha256?: unknown; size?: unknown } | undefined;
    const size = typeof lfs?.size === 'number' ? lfs.size : s?.size;
    if (typeof name !== 'string' || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new HubError(`the hub's file list for ${repo} has an entry without a name or size: ${JSON.stringify(s)}`);
    }
    const sha256 = typeof lfs?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(lfs.sha256) ? lfs.sha256 : undefined;
    if (lfs && !sha256) throw new HubError(`the hub's file list gives ${name} no valid sha256`);
    files.push({ name, size, sha256 });
  }
  return { commit: body.sha, files };
}

/** The resolve URL of one file at one commit (each path segment encoded). */
export function resolveUrl(hub: HubOptions, repo: string, commit: string, name: string): string {
  return `${hub.endpoint}/${repo}/resolve/${commit}/${name.split('/').map(encodeURIComponent).join('/')}`;
}
