/**
 * No orphan daemon holding the GPU: `vlcache serve --stdio` exits when its editor
 * goes away, whether the editor dies (vscode-languageclient passes
 * --clientProcessId=PID and initialize's processId; vscode-languageserver polls it)
 * or just closes the pipe.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';

const cli = join(__dirname, '..', '..', 'dist', 'cli.js');

/** One LSP message, framed. */
function frame(message: object): string {
  const body = JSON.stringify({ jsonrpc: '2.0', ...message });
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** Starts the daemon and sends initialize; resolves once the initialize result has arrived. */
async function startDaemon(args: string[], processId: number | null) {
  const daemon = spawn(process.execPath, [cli, 'serve', '--stdio', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  daemon.stderr.resume();
  let out = '';
  const initialized = new Promise<void>((resolve, reject) => {
    daemon.stdout.on('data', (b: Buffer) => { out += b.toString(); if (out.includes('"protocolVersion":1')) resolve(); });
    daemon.once('exit', (code) => reject(new Error(`the daemon exited (${code}) before answering initialize: ${out}`)));
  });
  daemon.stdin.write(frame({ id: 1, method: 'initialize', params: { processId, rootUri: null, capabilities: {} } }));
  await initialized;
  return daemon;
}

/** Resolves with the exit code, or rejects when the process is still alive after `ms`. */
function exitWithin(child: ReturnType<typeof spawn>, ms: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the daemon is still running after ${ms} ms`)); }, ms);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
}

describe('the daemon never outlives its editor', () => {
  it('exits when the editor process dies (parent-process watchdog)', async () => {
    // A stand-in for the editor: a process that only waits.
    const editor = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await once(editor, 'spawn');
    try {
      const daemon = await startDaemon([`--clientProcessId=${editor.pid}`], editor.pid!);
      editor.kill('SIGKILL');
      // vscode-languageserver checks the parent every 3 s; our end of the pipe stays open meanwhile.
      assert.equal(await exitWithin(daemon, 10_000), 1);
    } finally {
      editor.kill('SIGKILL');
    }
  });

  it('exits when the editor closes its end of the pipe', async () => {
    const daemon = await startDaemon([], null);
    daemon.stdin.end();
    await exitWithin(daemon, 10_000);
  });
});
