/**
 * A real HTTP server on 127.0.0.1 laid out like the npm registry: `/<name>` is the
 * packument, `/<name>/-/<name>-<version>.tgz` the tarball (with Range support). Its
 * behaviour can be changed between requests: cut the connection after N bytes, or
 * advertise an integrity that does not match.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServedPackage {
  readonly name: string;
  readonly version: string;
  readonly tarball: Buffer;
}

export class RegistryServer {
  /** Every request seen: path and Range header. */
  readonly requests: { path: string; range?: string }[] = [];
  /** Close the tarball connection after this many bytes of body (for every request while set). */
  cutAfter?: number;
  /** Integrity to advertise instead of the tarball's own. */
  integrityOverride?: string;
  /** Tarball URL to advertise instead of this server's own. */
  tarballUrlOverride?: string;
  private server?: Server;
  url = '';

  constructor(private readonly pkg: ServedPackage) {}

  get integrity(): string {
    return `sha512-${createHash('sha512').update(this.pkg.tarball).digest('base64')}`;
  }

  get tarballSize(): number {
    return this.pkg.tarball.length;
  }

  get tarballRequests(): { path: string; range?: string }[] {
    return this.requests.filter((r) => r.path.endsWith('.tgz'));
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: import('node:http').ServerResponse): void {
    const { name, version, tarball } = this.pkg;
    const path = decodeURIComponent(new URL(req.url!, this.url).pathname);
    this.requests.push({ path, range: req.headers.range });
    const tgzPath = `/${name}/-/${name}-${version}.tgz`;
    if (path === `/${name}`) {
      const dist = { tarball: this.tarballUrlOverride ?? `${this.url}${name}/-/${name}-${version}.tgz`, integrity: this.integrityOverride ?? this.integrity };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name, 'dist-tags': { latest: version }, versions: { [version]: { name, version, dist } } }));
      return;
    }
    if (path !== tgzPath) {
      res.writeHead(404).end('{"error":"not found"}');
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (start >= tarball.length) {
      res.writeHead(416, { 'content-range': `bytes */${tarball.length}` }).end();
      return;
    }
    const body = tarball.subarray(start);
    res.writeHead(m ? 206 : 200, {
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      ...(m ? { 'content-range': `bytes ${start}-${tarball.length - 1}/${tarball.length}` } : {}),
    });
    if (this.cutAfter !== undefined && this.cutAfter < body.length) {
      // end(), not destroy(): the bytes written arrive, then the connection closes short of content-length.
      res.write(body.subarray(0, this.cutAfter), () => res.socket?.end());
      return;
    }
    res.end(body);
  }
}
