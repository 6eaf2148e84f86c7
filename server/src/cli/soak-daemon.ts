/**
 * `vlcache soak --daemon`: the soak over the real daemon. It starts `vlcache serve --stdio` as a
 * child, initializes it on a temporary workspace and sends `vlcache/ask` requests, each with a
 * new image file and a different question, printing the daemon's RSS (from /proc) and the
 * cache directory's size every 100 asks, then whether RSS stayed within 10% over the second half.
 *
 * It speaks JSON-RPC over the child's stdio directly (Content-Length framing), so the soak
 * measures the daemon exactly as the extension drives it.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ImageInput } from '../ask/generate';

export interface DaemonSoakOptions {
  readonly requests: number;
  readonly every: number;
  readonly modelPath?: string;
  readonly ramMb: number;
  readonly diskMb: number;
  readonly json: boolean;
  readonly randomImage: (seed: number) => ImageInput;
}

/** A JSON-RPC client over a child's stdio: requests by id, responses matched as they come. */
class RpcClient {
  private buf = Buffer.alloc(0);
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(private readonly input: NodeJS.WritableStream, output: NodeJS.ReadableStream) {
    output.on('data', (d: Buffer) => this.read(d));
  }

  request(method: string, params: unknown): Promise<unknown> {
    const id = this.nextId++;
    this.send({ jsonrpc: '2.0', id, method, params });
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  notify(method: string, params: unknown): void {
    this.send({ jsonrpc: '2.0', method, params });
  }

  private send(msg: unknown): void {
    const body = Buffer.from(JSON.stringify(msg), 'utf8');
    this.input.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]));
  }

  private read(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const n = Number(/Content-Length: (\d+)/i.exec(this.buf.toString('ascii', 0, end))?.[1]);
      if (this.buf.length < end + 4 + n) return;
      const msg = JSON.parse(this.buf.toString('utf8', end + 4, end + 4 + n)) as
        { id?: number; result?: unknown; error?: { message: string }; method?: string };
      this.buf = this.buf.subarray(end + 4 + n);
      if (msg.method !== undefined || msg.id === undefined) continue; // notifications and server requests
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error.message));
      else p?.resolve(msg.result);
    }
  }
}

/** The resident set of process `pid`, in MiB (Linux /proc). */
function rssMib(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function dirMib(dir: string): number {
  let bytes = 0;
  try {
    for (const f of readdirSync(dir)) bytes += statSync(join(dir, f)).size;
  } catch {
    // Not created yet.
  }
  return bytes / 2 ** 20;
}

/** Runs the daemon soak; returns the exit code (1 when RSS grew more than 10% over the second half). */
export async function runDaemonSoak(o: DaemonSoakOptions): Promise<number> {
  const tmp = mkdtempSync(join(tmpdir(), 'vlcache-soak-daemon-'));
  const ws = join(tmp, 'ws'), cacheDir = join(tmp, 'cache');
  mkdirSync(ws);
  // The same bundle (or tsx entry) that runs this command serves the daemon.
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], 'serve', '--stdio'],
    { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, VLCACHE_HOME: join(tmp, 'home') } });
  const rpc = new RpcClient(child.stdin, child.stdout);
  const samples: { requests: number; rss_mib: number; cache_mib: number }[] = [];
  try {
    await rpc.request('initialize', {
      processId: process.pid, rootUri: null, capabilities: {},
      workspaceFolders: [{ uri: pathToFileURL(ws).href, name: 'soak' }],
      initializationOptions: { cacheDir, ramBudgetMb: o.ramMb, diskBudgetMb: o.diskMb, device: 'cpu', hover: false,
        prefetchOnOpen: false, idleTimeoutS: 0, ...(o.modelPath ? { modelPath: o.modelPath } : {}) },
    });
    rpc.notify('initialized', {});
    console.log(`soak --daemon: ${o.requests} asks, pid ${child.pid}; budgets RAM ${o.ramMb} MiB, disk ${o.diskMb} MiB`);
    console.log('| asks | daemon RSS MiB | cache dir MiB |');
    console.log('|---|---|---|');
    for (let i = 1; i <= o.requests; i++) {
      // A new image each ask (the previous one is deleted: the workspace stays small) and a new question.
      const img = o.randomImage(500_000 + i);
      const file = join(ws, `img-${i}.png`);
      writeFileSync(file, img.bytes);
      await rpc.request('vlcache/ask', { images: [file], question: `Question ${i}: what is in picture ${i}?`, maxTokens: 2 });
      rmSync(file);
      if (i % o.every === 0 || i === o.requests) {
        const row = { requests: i, rss_mib: rssMib(child.pid!), cache_mib: dirMib(cacheDir) };
        samples.push(row);
        console.log(`| ${i} | ${row.rss_mib.toFixed(0)} | ${row.cache_mib.toFixed(1)} |`);
      }
    }
    await rpc.request('shutdown', null);
    rpc.notify('exit', null);
  } finally {
    child.kill();
    rmSync(tmp, { recursive: true, force: true });
  }
  const last = samples[samples.length - 1], mid = samples[Math.floor((samples.length - 1) / 2)];
  const growth = (last.rss_mib - mid.rss_mib) / mid.rss_mib;
  const flat = growth <= 0.1;
  console.log(`soak --daemon: RSS ${mid.rss_mib.toFixed(0)} -> ${last.rss_mib.toFixed(0)} MiB over the second half ` +
    `(${(growth * 100).toFixed(1)}%): ${flat ? 'flat within 10%' : 'GROWS more than 10%'}`);
  if (o.json) console.log(JSON.stringify({ requests: o.requests, samples, growth }));
  return flat ? 0 : 1;
}
