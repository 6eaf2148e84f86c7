/**
 * A real HTTP hub on 127.0.0.1 in the Hugging Face URL layout, serving one folder: the
 * revision API (`/api/models/{repo}/revision/{rev}?blobs=true`), `/{repo}/resolve/{commit}/{file}`
 * (a 302 to a second server, "the CDN", on another port for *.safetensors, as the hub does
 * for LFS files), and Range requests on both. Every request is logged with its Range and
 * Authorization headers and the body bytes it was sent; `cutAfter` closes the CDN's connection
 * after that many body bytes, `outageAfter` does so and then keeps the CDN down (every
 * connection reset at once) until `down` is cleared: a network that drops and stays down.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  path: string;
  range?: string;
  authorization?: string;
  /** Body bytes written to the connection for this request (0: reset, 404 or redirect). */
  sent: number;
}

export interface LocalHub {
  readonly endpoint: string;
  readonly commit: string;
  readonly log: LoggedRequest[];
  /** Files served (name -> bytes); change one to serve different bytes than the listed sha256. */
  readonly files: Map<string, Buffer>;
  /** The sha256 listed for LFS files; defaults to the served bytes' hash. */
  readonly listedSha: Map<string, string>;
  /** Close the CDN connection after this many body bytes of one response (then reset to undefined). */
  cutAfter?: number;
  /** The CDN sends this many body bytes of one response and then nothing more (cancellation tests). */
  pauseAfter?: number;
  /** Like cutAfter, and then sets `down`. */
  outageAfter?: number;
  /** While set, the CDN resets every connection before answering (the retries of an interrupted download fail too). */
  down?: boolean;
  close(): Promise<void>;
}

const COMMIT = 'c0ffee'.padEnd(40, '0');

export async function startLocalHub(repo: string, folder: string): Promise<LocalHub> {
  const files = new Map(readdirSync(folder).map((n) => [n, readFileSync(join(folder, n))] as const));
  const isLfs = (n: string): boolean => n.endsWith('.safetensors');
  const hub = { commit: COMMIT, log: [] as LoggedRequest[], files, listedSha: new Map<string, string>() } as unknown as LocalHub;

  const cdn = createServer((req, res) => {
    const entry = log('cdn', req);
    if (hub.down) return void req.socket.destroy();
    const name = decodeURIComponent(new URL(req.url!, 'http://x').pathname.slice(1));
    const body = files.get(name);
    if (!body) return void res.writeHead(404).end();
    serveBytes(req, res, body, entry);
  });
  const server = createServer((req, res) => {
    const entry = log('hub', req);
    const url = new URL(req.url!, 'http://x');
    const api = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) {
      if (api[1] !== repo) return void res.writeHead(404).end('{"error":"Repository not found"}');
      const siblings = [...files.keys()].map((n) => {
        const b = files.get(n)!;
        return isLfs(n)
          ? { rfilename: n, size: b.length, lfs: { sha256: hub.listedSha.get(n) ?? createHash('sha256').update(b).digest('hex'), size: b.length } }
          : { rfilename: n, size: b.length };
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ id: repo, sha: COMMIT, siblings }));
    }
    const prefix = `/${repo}/resolve/${COMMIT}/`;
    if (!url.pathname.startsWith(prefix)) return void res.writeHead(404).end();
    const name = decodeURIComponent(url.pathname.slice(prefix.length));
    if (!files.has(name)) return void res.writeHead(404).end();
    if (isLfs(name)) {
      res.writeHead(302, { location: `http://127.0.0.1:${(cdn.address() as AddressInfo).port}/${encodeURIComponent(name)}` });
      return void res.end();
    }
    serveBytes(req, res, files.get(name)!, entry, false);
  });

  function log(s: 'hub' | 'cdn', req: IncomingMessage): LoggedRequest {
    const entry = { server: s, path: req.url!, range: req.headers.range, authorization: req.headers.authorization, sent: 0 };
    hub.log.push(entry);
    return entry;
  }

  function serveBytes(req: IncomingMessage, res: ServerResponse, body: Buffer, entry: LoggedRequest, canCut = true): void {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (start >= body.length && m) return void res.writeHead(416).end();
    const part = body.subarray(start);
    res.writeHead(m ? 206 : 200, { 'content-length': part.length, ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
    const cut = hub.cutAfter ?? hub.outageAfter;
    if (canCut && cut !== undefined) {
      if (hub.outageAfter !== undefined) hub.down = true;
      hub.cutAfter = hub.outageAfter = undefined;
      entry.sent = Math.min(cut, part.length);
      res.write(part.subarray(0, cut), () => res.destroy());
      return;
    }
    if (canCut && hub.pauseAfter !== undefined) {
      const n = hub.pauseAfter;
      hub.pauseAfter = undefined;
      entry.sent = Math.min(n, part.length);
      res.write(part.subarray(0, n));
      return;
    }
    entry.sent = part.length;
    res.end(part);
  }

  await Promise.all([server, cdn].map((s: Server) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  Object.assign(hub, {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of [server, cdn]) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
    },
  });
  return hub;
}
