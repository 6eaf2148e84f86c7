/** A temp workspace with images, a FakeClientSink, and initialize params for the daemon's tests. */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';
import type { InitializeParams, ProgressToken, ProgressType } from 'vscode-languageserver-protocol';
import type { ClientSink } from '../../server/src/server';
import type { StatusParams } from '../../server/src/protocol/status';
import type { InitializationOptions } from '../../server/src/protocol/initialize';

export const repoRoot = resolve(__dirname, '../..');

export interface Workspace {
  dir: string; // the workspace folder
  outside: string; // an image next to it, outside
  cacheDir: string;
  home: string; // VLCACHE_HOME
}

function png(width: number, height: number, seed: number): Buffer {
  const p = new PNG({ width, height });
  for (let i = 0; i < p.data.length; i++) p.data[i] = (i * seed) & 0xff;
  return PNG.sync.write(p);
}

/** diagram.png (the demo image), a.png and b.png inside `dir`; outside.png outside it. */
export function makeWorkspace(): Workspace {
  const tmp = mkdtempSync(join(tmpdir(), 'vlcache-server-'));
  const dir = join(tmp, 'ws');
  mkdirSync(join(dir, 'docs'), { recursive: true });
  copyFileSync(join(repoRoot, 'media', 'samples', 'diagram.png'), join(dir, 'docs', 'diagram.png'));
  writeFileSync(join(dir, 'a.png'), png(64, 48, 37));
  writeFileSync(join(dir, 'b.png'), png(48, 64, 53));
  writeFileSync(join(tmp, 'outside.png'), png(32, 32, 11));
  const home = join(tmp, 'home');
  mkdirSync(home);
  return { dir, outside: join(tmp, 'outside.png'), cacheDir: join(tmp, 'cache'), home };
}

export function initializeParams(ws: Workspace, options: InitializationOptions = {}): InitializeParams {
  return {
    processId: null, rootUri: null, capabilities: {},
    workspaceFolders: [{ uri: pathToFileURL(ws.dir).href, name: 'ws' }],
    initializationOptions: { cacheDir: ws.cacheDir, device: 'cpu', ...options },
  };
}

/** Records everything the server sends back. */
export class FakeClientSink implements ClientSink {
  readonly statuses: StatusParams[] = [];
  readonly partials: { token: ProgressToken; value: unknown }[] = [];
  readonly workDone: { token: ProgressToken; kind: string; message?: string }[] = [];
  readonly logs: string[] = [];
  /** Called after each partial result is recorded. */
  onPartial?: (value: unknown) => void;
  /** Called after each status is recorded. */
  onStatus?: (s: StatusParams) => void;

  sendStatus(p: StatusParams): void {
    this.statuses.push(p);
    this.onStatus?.(p);
  }
  sendPartialResult<P>(_type: ProgressType<P>, token: ProgressToken, value: P): void {
    this.partials.push({ token, value });
    this.onPartial?.(value);
  }
  sendWorkDone(token: ProgressToken, value: { kind: string; message?: string }): void {
    this.workDone.push({ token, kind: value.kind, message: value.message });
  }
  log(m: string): void {
    this.logs.push(m);
  }
}
