/**
 * Hover latency against the real daemon (`node dist/cli.js serve --stdio`, the process the
 * extension spawns), with the model not yet loaded: the first hover on an image must answer
 * within {@link HOVER_BOUND_MS} with the thumbnail, size, cache state, "being prepared" and
 * the Ask / Explain command links, while the model loads and explains in the background.
 * A hover that waited for the model (its load, its prefill) would miss the bound, and would
 * show the explanation instead of "being prepared": both are asserted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  createProtocolConnection, DidOpenTextDocumentNotification, ExitNotification, HoverRequest, InitializeRequest,
  ShutdownRequest, StreamMessageReader, StreamMessageWriter, type Hover, type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { StatusNotification, type StatusParams } from '../../server/src/protocol';
import { patternPng } from '../support/images';
import { initializeParams, makeWorkspace, repoRoot, type Workspace } from '../support/server-fixture';

/** What the issue asks of a hover: something useful within 400 ms. */
const HOVER_BOUND_MS = 400;

/** Between opening a document and the first hover: a user reads before hovering (the daemon warms a thumbnail worker). */
const READING_MS = 500;

/** The golden tests' random-weight Qwen2-VL: tiny, yet its explanation runs to the token budget. */
const TINY_MODEL = join(repoRoot, 'test', 'golden', 'fixtures', 'qwen2vl-tiny');

let ws: Workspace;
before(() => {
  ws = makeWorkspace();
  writeFileSync(join(ws.dir, 'docs', 'shot.png'), patternPng(300, 200, 7));
});

function spawnDaemon() {
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'serve', '--stdio'], {
    env: { ...process.env, VLCACHE_HOME: ws.home }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderr!.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const client: ProtocolConnection = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  client.listen();
  return { child, client, exited };
}

const value = (h: Hover | null) => (h?.contents as { value: string } | undefined)?.value ?? '';

describe('hover latency against the spawned daemon', () => {
  let d: ReturnType<typeof spawnDaemon>;
  const statuses: StatusParams[] = [];
  before(async () => {
    d = spawnDaemon();
    d.client.onNotification(StatusNotification.type, (s) => { statuses.push(s); });
    // The default hoverWaitMs: what a user gets.
    await d.client.sendRequest(InitializeRequest.type, initializeParams(ws, { modelPath: TINY_MODEL, cacheDir: join(ws.home, 'cache-latency') }));
  });
  after(async () => {
    if (d.child.exitCode !== null) return;
    await d.client.sendRequest(ShutdownRequest.type).catch(() => undefined);
    await d.client.sendNotification(ExitNotification.type).catch(() => undefined);
    if (await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('late'), 5000))]) === 'late') d.child.kill();
    d.client.dispose();
  });

  /** Resolves once the daemon said `rel`'s explanation is made (the model is idle again). */
  async function explained(rel: string): Promise<void> {
    const image = pathToFileURL(join(ws.dir, rel)).href;
    const end = Date.now() + 120_000;
    while (!statuses.some((s) => s.kind === 'explained' && s.image === image)) {
      assert.ok(Date.now() < end, `no explanation of ${rel} within 120 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Opens `text` as `rel` and times a hover at the first `marker`. */
  async function timedHover(rel: string, languageId: string, text: string, marker: string) {
    const uri = pathToFileURL(join(ws.dir, rel)).href;
    await d.client.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId, version: 1, text } });
    await new Promise((r) => setTimeout(r, READING_MS));
    const at = text.indexOf(marker) + 1;
    const t0 = performance.now();
    const h = await d.client.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: at } });
    return { ms: performance.now() - t0, value: value(h) };
  }

  it(`answers a first hover (model not loaded) within ${HOVER_BOUND_MS} ms: thumbnail, size, cache state, links, "being prepared"`, async () => {
    const image = pathToFileURL(join(ws.dir, 'docs', 'shot.png')).href;
    const { ms, value: v } = await timedHover('page.html', 'html', '<img src="docs/shot.png">', 'docs');
    assert.ok(ms < HOVER_BOUND_MS, `the first hover took ${ms.toFixed(0)} ms`);
    // Our thumbnail (VS Code shows none for <img>), unless it was not made within the hover's budget (a busy machine).
    assert.match(v, /^(!\[docs\/shot\.png\]\(data:image\/png;base64,[A-Za-z0-9+/=]+\)\n\n)?\*\*docs\/shot\.png\*\* · 300 × 200 px/);
    assert.match(v, /being prepared/);
    assert.match(v, /no explanation cached yet/);
    const args = encodeURIComponent(JSON.stringify([image]));
    assert.ok(v.includes(`(command:vlcache.askAboutImage?${args} "`), v);
    assert.ok(v.includes(`(command:vlcache.explainDiagram?${args} "`), v);
    // Notifications and responses share the pipe in order: a hover that started loading the model
    // before answering (a load blocks the daemon's event loop for seconds with a real checkpoint)
    // would have sent 'loading' first.
    assert.equal(statuses.some((s) => s.kind === 'loading'), false, 'the model started loading before the hover was answered');
    assert.equal(statuses.some((s) => s.kind === 'explained'), false, 'the hover answered before the explanation was made');
  });

  // NOTE: each timed hover comes when no explanation is being computed: a model load blocks the daemon's event
  // loop (onnxruntime-node creates sessions synchronously), so a hover during one waits (README: Hovers).
  it(`answers a Markdown image link within ${HOVER_BOUND_MS} ms without a second thumbnail (VS Code previews those)`, async () => {
    await explained('docs/shot.png');
    const { ms, value: v } = await timedHover('notes.md', 'markdown', 'See ![arch](docs/diagram.png).', 'arch');
    assert.ok(ms < HOVER_BOUND_MS, `the hover took ${ms.toFixed(0)} ms`);
    assert.doesNotMatch(v, /data:image/);
    assert.match(v, /\*\*docs\/diagram\.png\*\* · \d+ × \d+ px/);
    assert.match(v, /command:vlcache\.askAboutImage\?/);
  });

  it('shows the thumbnail, the explanation and the cache state once it is ready', async () => {
    await explained('docs/diagram.png');
    const { ms, value: v } = await timedHover('page2.html', 'html', '<img src="docs/shot.png">', 'docs');
    assert.ok(ms < HOVER_BOUND_MS, `the hover took ${ms.toFixed(0)} ms`);
    assert.match(v, /^!\[docs\/shot\.png\]\(data:image\/png;base64,/);
    assert.match(v, /· (cold|⚡ image cached) · TTFT \d+ ms/);
    assert.doesNotMatch(v, /being prepared/);
  });
});
