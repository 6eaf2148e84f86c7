/// <reference types="mocha" />
// Extension tests, run inside VS Code's extension host: offline in code-server by
// test/e2e/run.mjs, and in desktop VS Code by @vscode/test-cli (.vscode-test.mjs).
// Both load the compiled copy, out/test/e2e/extension.test.js. The daemon is real
// (dist/cli.js serve --stdio on the built-in model, CPU), and so are the files of
// the fixture workspace (test/fixtures/workspace, whose .vscode/settings.json caps
// images at 150,000 pixels).
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { Turn } from '../../extension/src/answer-view';
import type { VlcacheApi } from '../../extension/src/main';
import type { MockupOutcome } from '../../extension/src/mockup';
import { needsDaemon } from '../../extension/src/lazy-start';
import { EXPLAIN_QUESTION, ErrorCodes, type StatsResult } from '../../server/src/protocol';
import { followupsFor } from '../../extension/src/chat-images';

const extensionId = 'vlcache.vlcache';
const COMMANDS = ['askAboutImage', 'explainDiagram', 'mockupToCode', 'stopMockupToCode', 'showCacheStatistics', 'clearWorkspaceCache', 'restartDaemon', 'showOutput', 'showVersion'];

function workspaceFile(rel: string): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'no workspace folder');
  return vscode.Uri.joinPath(folder.uri, rel);
}

async function api(): Promise<VlcacheApi> {
  const extension = vscode.extensions.getExtension<VlcacheApi>(extensionId);
  assert.ok(extension, `${extensionId} is not loaded`);
  return extension.activate();
}

/** Polls `f` every 100 ms until it returns a truthy value or `ms` pass. */
async function until<T>(what: string, f: () => T | Promise<T>, ms = 30_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function running(a: VlcacheApi): Promise<void> {
  await until('the daemon to run', () => a.daemon.currentState === 'running');
}

function hoverText(hovers: vscode.Hover[]): string {
  return hovers.flatMap((h) => h.contents).map((c) => (typeof c === 'string' ? c : c.value)).join('\n');
}

describe('Extension', () => {
  it('activates, returns the package version and starts the daemon on first use, not before (protocol 1)', async () => {
    const a = await api();
    const extension = vscode.extensions.getExtension(extensionId)!;
    assert.equal(a.version, extension.packageJSON.version);
    assert.ok(!(extension.packageJSON.activationEvents as string[]).includes('onStartupFinished'), 'activates at start-up');
    // Lazy start: with no open document naming an image, activation starts no daemon.
    if (!vscode.workspace.textDocuments.some((d) => d.uri.scheme === 'file' && needsDaemon(d.languageId, d.getText()))) {
      assert.equal(a.daemon.currentState, 'stopped', 'a daemon started without any use');
    }
    await a.daemon.stats(); // the first use
    await running(a);
    assert.equal(a.daemon.initializeResult?.protocolVersion, 1);
    assert.ok(a.daemon.pid, 'the daemon has a process id');
    assert.match(a.statusBar().text, /VLCache/);
  });

  it('registers every command', async () => {
    await api();
    const commands = await vscode.commands.getCommands(true);
    for (const c of COMMANDS) assert.ok(commands.includes(`vlcache.${c}`), `vlcache.${c} is not registered`);
    assert.equal(await vscode.commands.executeCommand('vlcache.showVersion'), (await api()).version);
  });

  it('opens the fixture workspace', () => {
    const folders = vscode.workspace.workspaceFolders ?? [];
    assert.equal(folders.length, 1);
    assert.match(folders[0].uri.path, /test\/fixtures\/workspace$/);
  });
});

describe('Answers', () => {
  const diagram = () => workspaceFile('docs/diagram.png');

  it('Explain Diagram streams an answer into the answer view, with timings and cache statistics', async () => {
    const a = await api();
    const turn = await vscode.commands.executeCommand<Turn>('vlcache.explainDiagram', diagram());
    assert.ok(turn, 'the command returned no turn');
    assert.equal(turn.state, 'done', turn.error);
    assert.ok(turn.result);
    assert.equal(turn.answer, turn.result.text);
    assert.ok(turn.result.nGeneratedTokens > 0);
    assert.ok(turn.result.timings.ttftMs > 0);
    assert.equal(turn.result.images.length, 1);
    assert.equal(turn.result.images[0].downscaled, false);
    assert.equal(a.lastAnswerPanel()?.turns.at(-1), turn);
  });

  it('a follow-up question on the same image continues the conversation and hits the cache', async () => {
    const a = await api();
    const panel = a.lastAnswerPanel();
    assert.ok(panel);
    const turn = await panel.ask('What is in the top left corner?');
    assert.equal(turn.state, 'done', turn.error);
    assert.equal(panel.turns.length, 2);
    const c = turn.result!.cache;
    assert.ok(c.encoderHits + c.kvHits > 0 || c.prefixTokensReused > 0, `no reuse: ${JSON.stringify(c)}`);
    assert.ok(c.tokensComputed < c.tokensTotal, `everything was recomputed: ${JSON.stringify(c)}`);
  });

  it("reports the daemon's work-done progress while answering", async () => {
    const a = await api();
    const messages: string[] = [];
    const r = await a.daemon.ask({ images: [diagram().toString()], question: 'What is this?', maxTokens: 4 }, () => {}, undefined, (m) => messages.push(m));
    assert.ok(r.nGeneratedTokens >= 1 && r.nGeneratedTokens <= 4, `${r.nGeneratedTokens} tokens`);
    assert.deepEqual(messages.filter((m) => m === 'queued' || m === 'generating'), ['queued', 'generating']);
  });

  it('asks about several images at once (explorer multi-select arguments)', async () => {
    const images = [diagram(), workspaceFile('docs/screenshot-large.png')];
    const turn = await vscode.commands.executeCommand<Turn>('vlcache.askAboutImage', images[0], images, { question: 'How do these differ?' });
    assert.equal(turn?.state, 'done', turn?.error);
    assert.equal(turn!.result!.images.length, 2);
  });

  it('a huge screenshot is downscaled to vlcache.maxImagePixels, and the answer says so', async () => {
    const turn = await vscode.commands.executeCommand<Turn>('vlcache.askAboutImage', workspaceFile('docs/screenshot-large.png'), undefined, { question: 'What is this?' });
    assert.equal(turn?.state, 'done', turn?.error);
    const im = turn!.result!.images[0];
    assert.equal(im.downscaled, true);
    assert.equal(im.width, 1920);
    assert.ok(im.nTokens * 28 * 28 <= 150_000, `${im.nTokens} tokens exceed 150,000 pixels`);
  });

  it('Mockup to Code writes the generated code into a saved file next to the mockup (more in mockup-file.test.ts)', async () => {
    const out = await vscode.commands.executeCommand<MockupOutcome>('vlcache.mockupToCode', workspaceFile('docs/screenshot-large.png'));
    assert.ok(out, 'no outcome');
    try {
      assert.equal(out.document.languageId, 'html');
      assert.equal(out.document.uri.path, workspaceFile('docs/screenshot-large.html').path);
      assert.equal(out.document.isDirty, false);
      assert.ok(out.document.getText().split('\n').slice(1).join('').trim().length > 0, 'no code below the header');
    } finally {
      if (out.preview.kind === 'page') out.preview.panel.dispose();
      await vscode.window.tabGroups.close(vscode.window.tabGroups.all.flatMap((g) => g.tabs)
        .filter((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === out.document.uri.toString()));
      await vscode.workspace.fs.delete(out.document.uri);
    }
  });
});

describe('One answer panel', () => {
  const answerTabs = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs)
    .filter((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith('vlcache.answer'));

  it('asking about other images reuses the open panel: one tab, both image sets in its conversation', async () => {
    const a = await api();
    const first = await vscode.commands.executeCommand<Turn>('vlcache.explainDiagram', workspaceFile('docs/diagram.png'));
    assert.equal(first?.state, 'done', first?.error);
    const panel = a.lastAnswerPanel();
    const second = await vscode.commands.executeCommand<Turn>('vlcache.askAboutImage', workspaceFile('docs/chart.png'), undefined, { question: 'What is this?' });
    assert.equal(second?.state, 'done', second?.error);
    assert.equal(a.lastAnswerPanel(), panel, 'another panel answered');
    assert.equal(answerTabs().length, 1, `${answerTabs().length} answer tabs`);
    assert.deepEqual(panel!.images.map((u) => u.path), [workspaceFile('docs/chart.png').path]);
    assert.ok(panel!.turns.includes(first!) && panel!.turns.includes(second!));
    // A follow-up in the panel is about the new image, with only the conversation about it.
    const follow = await panel!.ask('And the colours?');
    assert.equal(follow.state, 'done', follow.error);
    assert.deepEqual(follow.images.map((u) => u.path), [workspaceFile('docs/chart.png').path]);
  });
});

describe('Chat participant @vlcache (driven through its handler: code-server 4.100 shows no Chat view without Copilot)', () => {
  type Recorded = { stream: vscode.ChatResponseStream; text: () => string; progress: string[]; references: string[] };
  /** A ChatResponseStream that records what the handler streams. */
  function recordingStream(): Recorded {
    const parts: string[] = [];
    const progress: string[] = [];
    const references: string[] = [];
    const stream = new Proxy({}, {
      get: (_t, name) => name === 'markdown' ? (v: string | vscode.MarkdownString) => parts.push(typeof v === 'string' ? v : v.value)
        : name === 'progress' ? (m: string) => progress.push(m)
          : name === 'reference' ? (u: vscode.Uri) => references.push(u.toString()) : () => undefined,
    }) as vscode.ChatResponseStream;
    return { stream, text: () => parts.join(''), progress, references };
  }
  const request = (prompt: string, references: vscode.ChatPromptReference[], command?: string) =>
    ({ prompt, command, references, toolReferences: [], toolInvocationToken: undefined, model: undefined }) as unknown as vscode.ChatRequest;
  /** The history VS Code passes: the request turn and the response turn (with its result) of each earlier exchange. */
  const historyOf = (...turns: [vscode.ChatRequest, vscode.ChatResult][]) => ({
    history: turns.flatMap(([req, result]) => [
      { prompt: req.prompt, command: req.command, references: req.references, participant: 'vlcache.chat', toolReferences: [] },
      { response: [], result, participant: 'vlcache.chat', command: req.command },
    ]),
  }) as unknown as vscode.ChatContext;
  const ask = async (req: vscode.ChatRequest, context: vscode.ChatContext = { history: [] }) => {
    const rec = recordingStream();
    const result = await (await api()).chatHandler(req, context, rec.stream, new vscode.CancellationTokenSource().token) as vscode.ChatResult;
    return { rec, result, meta: result.metadata as { images: string[]; answer: string; question: string } | undefined };
  };

  it('this editor has the Chat API the participant registers with (code-server 4.100 has no Chat view to show it)', () => {
    assert.equal(typeof vscode.chat?.createChatParticipant, 'function');
  });

  it('answers about a #file image with the streamed answer and the cache badge; a follow-up reuses the image', async () => {
    const diagram = workspaceFile('docs/diagram.png');
    const first = request('#file:diagram.png How many boxes are there?', [{ id: 'vscode.file', range: [0, 17], value: diagram }]);
    const one = await ask(first);
    assert.equal(one.result.errorDetails, undefined, one.result.errorDetails?.message);
    assert.deepEqual(one.meta?.images, [diagram.toString()]);
    assert.equal(one.meta?.question, 'How many boxes are there?');
    assert.ok(one.meta!.answer.trim(), 'empty answer');
    assert.ok(one.rec.text().startsWith(one.meta!.answer), one.rec.text());
    assert.match(one.rec.text(), /\n---\n_.*TTFT \d+/);
    assert.deepEqual(one.rec.references, [diagram.toString()]);
    // The follow-up names no image: the image of the first turn, with its conversation, so its KV is reused.
    const second = await ask(request('What colour are they?', []), historyOf([first, one.result]));
    assert.equal(second.result.errorDetails, undefined, second.result.errorDetails?.message);
    assert.deepEqual(second.meta?.images, [diagram.toString()]);
    assert.match(second.rec.text(), /_⚡ image reused \((KV|prefix), (RAM|disk)\)/);
    assert.match(second.rec.progress[0], /from earlier in this chat/);
    assert.deepEqual(followupsFor(second.meta as never).map((f) => f.command), [undefined, 'mockup']);
  });

  it('a pasted image is written once, named by its content, where the daemon reads it; /explain asks the Explain question', async () => {
    const bytes = await vscode.workspace.fs.readFile(workspaceFile('docs/chart.png'));
    const Binary = (vscode as unknown as { ChatReferenceBinaryData?: new (mime: string, data: () => Thenable<Uint8Array>) => unknown }).ChatReferenceBinaryData;
    const pasted = () => (Binary ? new Binary('image/png', async () => bytes) : { mimeType: 'image/png', data: async () => bytes });
    const one = await ask(request('', [{ id: 'vscode.image', value: pasted() }], 'explain'));
    assert.equal(one.result.errorDetails, undefined, one.result.errorDetails?.message);
    assert.equal(one.meta?.question, EXPLAIN_QUESTION);
    assert.match(one.meta!.images[0], /\/chat-images\/[0-9a-f]{64}\.png$/);
    const two = await ask(request('', [{ id: 'vscode.image', value: pasted() }], 'explain'));
    assert.deepEqual(two.meta?.images, one.meta?.images);
    assert.match(two.rec.text(), /_⚡ image reused/);
  });

  it('/mockup asks for code; a selection is added to the question as context', async () => {
    const doc = await vscode.workspace.openTextDocument(workspaceFile('src/app.ts'));
    const range = new vscode.Range(0, 0, Math.min(doc.lineCount - 1, 2), 0);
    const r = await ask(request('#file:screenshot-large.png like this', [
      { id: 'vscode.selection', value: new vscode.Location(doc.uri, range) },
      { id: 'vscode.file', range: [0, 26], value: workspaceFile('docs/screenshot-large.png') },
    ], 'mockup'));
    assert.equal(r.result.errorDetails, undefined, r.result.errorDetails?.message);
    assert.match(r.meta!.question, /^Write .* UI mockup.* like this\n\nCode for context:\n\nsrc\/app\.ts:1-/s);
    assert.ok(r.meta!.question.includes(doc.getText(range).trim()));
  });

  it('says what to do without an image, and reports a bad image in the chat', async () => {
    const none = await ask(request('What is this?', []));
    assert.match(none.rec.text(), /Attach an image first/);
    const bad = await ask(request('#file:not-an-image.png ?', [{ id: 'vscode.file', range: [0, 22], value: workspaceFile('docs/not-an-image.png') }]));
    assert.match(bad.result.errorDetails?.message ?? '', /docs\/not-an-image\.png is not a PNG/);
    assert.match(bad.rec.text(), /VLCache: Show Output/);
    // A reference that is no text (a #folder) is skipped with a word; the image is still answered.
    const folder = await ask(request('What is this?', [{ id: 'vscode.folder', value: workspaceFile('src') }, { id: 'vscode.file', value: workspaceFile('docs/diagram.png') }]));
    assert.match(folder.rec.text(), /^_Skipped src \(neither an image nor a text file\)\._/);
    assert.equal(folder.result.errorDetails, undefined, folder.result.errorDetails?.message);
  });

  it('a cancelled request stops the answer', async () => {
    const cts = new vscode.CancellationTokenSource();
    const rec = recordingStream();
    const pending = (await api()).chatHandler(request('Describe it.', [{ id: 'vscode.file', value: workspaceFile('docs/diagram.png') }]), { history: [] }, rec.stream, cts.token);
    cts.cancel();
    const result = await pending as vscode.ChatResult;
    assert.equal(result.errorDetails, undefined, result.errorDetails?.message);
  });
});

describe('Chat model provider: the local model through vscode.lm (VS Code 1.104 and later)', () => {
  /** `vscode.LanguageModelDataPart` (1.104; this extension's typings are 1.100's). */
  type DataPartClass = { image(data: Uint8Array, mimeType: string): unknown };
  const DataPart = (vscode as unknown as { LanguageModelDataPart?: DataPartClass }).LanguageModelDataPart;
  const hasProviderApi = () => typeof (vscode.lm as unknown as { registerLanguageModelChatProvider?: unknown }).registerLanguageModelChatProvider === 'function';

  it('answers a question about an image part, then a follow-up whose image is reused from the cache', async function () {
    // code-server 4.100 (VS Code 1.100) has no provider API: the provider is not registered there, nothing to test.
    if (!hasProviderApi() || !DataPart) return this.skip();
    const a = await api();
    const models = await vscode.lm.selectChatModels({ vendor: 'vlcache' });
    assert.deepEqual(models.map((m) => [m.id, m.name]), [['vlcache-local', 'VLCache (local vision model)']]);
    const [model] = models;
    const bytes = await vscode.workspace.fs.readFile(workspaceFile('docs/diagram.png'));
    const text = async (messages: vscode.LanguageModelChatMessage[]) => {
      const response = await model.sendRequest(messages, {}, new vscode.CancellationTokenSource().token);
      let out = '';
      for await (const t of response.text) out += t;
      return out.trim();
    };
    const question = vscode.LanguageModelChatMessage.User([new vscode.LanguageModelTextPart('How many boxes are there?'),
      DataPart.image(bytes, 'image/png') as vscode.LanguageModelTextPart]);
    const first = await text([question]);
    assert.match(first, /^\d{1,2}$/, `the built-in model counts boxes: "${first}"`);
    const before = (await a.daemon.stats()).requests.images!;
    // The Chat view sends the whole conversation again: the image, the answer, the next question.
    const second = await text([question, vscode.LanguageModelChatMessage.Assistant(first), vscode.LanguageModelChatMessage.User('What colour are they?')]);
    assert.ok(second, 'empty follow-up answer');
    const after = (await a.daemon.stats()).requests.images!;
    assert.equal(after.kv + after.prefix - before.kv - before.prefix, 1, `the follow-up's image was not reused: ${JSON.stringify({ before, after })}`);
  });

  it('counts tokens of a string and of a message', async function () {
    if (!hasProviderApi()) return this.skip();
    await api();
    const [model] = await vscode.lm.selectChatModels({ vendor: 'vlcache' });
    assert.equal(await model.countTokens('12345678'), 2);
    assert.equal(await model.countTokens(vscode.LanguageModelChatMessage.User('1234')), 1);
  });
});

describe('Bad input', () => {
  it('refuses a path outside the workspace', async () => {
    const a = await api();
    await assert.rejects(a.daemon.ask({ images: [vscode.Uri.file('/etc/hostname.png').toString()], question: 'What?' }, () => {}),
      (e: { code?: number }) => e.code === ErrorCodes.PathOutsideWorkspace);
  });

  it('says clearly that a text file with an image extension is not an image', async () => {
    const a = await api();
    await assert.rejects(a.daemon.ask({ images: [workspaceFile('docs/not-an-image.png').toString()], question: 'What?' }, () => {}),
      (e: { code?: number; message: string }) => e.code === ErrorCodes.InvalidImage && /not-an-image\.png/.test(e.message));
  });

  it('a text file named .png opens no answer view (Ask About Image… and Mockup to Code refuse it first)', async () => {
    const a = await api();
    const before = a.lastAnswerPanel();
    const tabs = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).length;
    const nTabs = tabs();
    const turn = await vscode.commands.executeCommand('vlcache.askAboutImage', workspaceFile('docs/not-an-image.png'), { question: 'What?' });
    assert.equal(turn, undefined);
    assert.equal(await vscode.commands.executeCommand('vlcache.mockupToCode', workspaceFile('docs/not-an-image.png')), undefined);
    assert.equal(a.lastAnswerPanel(), before, 'an answer view answered');
    assert.equal(tabs(), nTabs, 'a tab opened');
  });

  it('an image that has disappeared is a clear error, and nothing else breaks', async () => {
    const a = await api();
    const gone = workspaceFile('docs/gone.png');
    await vscode.workspace.fs.copy(workspaceFile('docs/diagram.png'), gone, { overwrite: true });
    await vscode.workspace.fs.delete(gone);
    await assert.rejects(a.daemon.ask({ images: [gone.toString()], question: 'What?' }, () => {}),
      (e: { code?: number; message: string }) => e.code === ErrorCodes.InvalidImage && /no such image file/.test(e.message));
    const stats = await a.daemon.stats();
    assert.equal(stats.model.state, 'ready');
  });
});

describe('Hovers and code lenses', () => {
  it('hovering a Markdown image link explains the image (prepared in the background if needed), with Ask / Explain links', async () => {
    await api();
    const readme = await vscode.workspace.openTextDocument(workspaceFile('README.md'));
    await vscode.window.showTextDocument(readme);
    const at = readme.positionAt(readme.getText().indexOf('docs/diagram.png') + 3);
    const text = await until('a ready hover', async () => {
      const t = hoverText(await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', readme.uri, at));
      return /TTFT/.test(t) ? t : undefined;
    });
    // VS Code's Markdown hover previews the linked image: ours adds no second copy, only its info and links.
    assert.doesNotMatch(text, /data:image\/png;base64,/, 'a second copy of the image');
    assert.match(text, /392\s*×\s*308/);
    assert.match(text, /command:vlcache\.askAboutImage\?/, 'no Ask link');
  });

  it('hovers a string literal naming an image in TypeScript', async () => {
    const doc = await vscode.workspace.openTextDocument(workspaceFile('src/app.ts'));
    const at = doc.positionAt(doc.getText().indexOf('diagram.png'));
    const text = await until('a hover', async () =>
      hoverText(await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', doc.uri, at)));
    assert.match(text, /diagram\.png|data:image\/png/);
  });

  it('offers Ask / Explain code lenses on Markdown image links', async () => {
    const readme = await vscode.workspace.openTextDocument(workspaceFile('README.md'));
    const lenses = await until('code lenses', async () => {
      const l = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', readme.uri);
      return l?.length ? l : undefined;
    });
    const commands = lenses.map((l) => l.command?.command);
    assert.ok(commands.includes('vlcache.askAboutImage'));
    assert.ok(commands.includes('vlcache.explainDiagram'));
    const explain = lenses.find((l) => l.command?.command === 'vlcache.explainDiagram')!;
    assert.match(String(explain.command!.arguments?.[0]), /^file:.*docs\/(diagram|screenshot-large)\.png$/);
  });
});

describe('Statistics and cache', () => {
  it('opening a Markdown file prefetches its images, so the first question about them is a cache hit', async () => {
    const a = await api();
    const before = (await a.daemon.stats()).requests.nPrefetches;
    await vscode.workspace.openTextDocument(workspaceFile('docs/gallery.md'));
    await until('the prefetch', async () => (await a.daemon.stats()).requests.nPrefetches > before);
    const r = await a.daemon.ask({ images: [workspaceFile('docs/chart.png').toString()], question: 'Which bar is tallest?', maxTokens: 2 }, () => {});
    assert.equal(r.cache.encoderHits, 1, JSON.stringify(r.cache));
    assert.ok(r.cache.tokensComputed < r.cache.tokensTotal, JSON.stringify(r.cache));
  });

  it('Show Cache Statistics opens the view with the recent requests and the status bar shows the images reused and TTFT', async () => {
    const a = await api();
    const shown = await vscode.commands.executeCommand<StatsResult>('vlcache.showCacheStatistics');
    assert.ok(shown?.cache, 'no cache statistics');
    assert.ok(shown.requests.nAsks >= 4);
    assert.ok((shown.requests.recent ?? []).some((r) => r.outcome === 'image'), 'no request reused its images among the recent requests');
    await until('the status bar to show the images reused and TTFT', () => /\d+% images reused/.test(a.statusBar().text) && /TTFT/.test(a.statusBar().text));
    assert.match(a.statusBar().tooltip, /RAM/);
  });

  it('Clear Workspace Cache empties it', async () => {
    const a = await api();
    const r = await vscode.commands.executeCommand<{ nEntriesRemoved: number }>('vlcache.clearWorkspaceCache', { confirm: false });
    assert.ok(r && r.nEntriesRemoved > 0, `removed ${r?.nEntriesRemoved}`);
    const s = await a.daemon.stats();
    assert.equal(s.cache!.ram.nEntries, 0);
    assert.equal(s.cache!.disk?.nEntries ?? 0, 0);
  });
});

describe('Daemon lifecycle', () => {
  it('Restart Daemon starts a new process', async () => {
    const a = await api();
    const before = a.daemon.pid;
    assert.equal(await vscode.commands.executeCommand('vlcache.restartDaemon'), 'running');
    assert.ok(a.daemon.pid && a.daemon.pid !== before);
  });

  it('a daemon that dies is restarted with backoff, and requests work again', async () => {
    const a = await api();
    const pid = a.daemon.pid!;
    process.kill(pid, 'SIGKILL');
    await until('the restart to begin', () => a.daemon.currentState === 'restarting');
    await until('a new daemon', () => a.daemon.currentState === 'running' && a.daemon.pid !== pid);
    const turn = await vscode.commands.executeCommand<Turn>('vlcache.explainDiagram', workspaceFile('docs/diagram.png'));
    assert.equal(turn?.state, 'done', turn?.error);
  });

  it('Select Model… with a folder that is not a model names the problem at once and leaves the setting alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vlcache-not-a-model-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama' }));
      const before = vscode.workspace.getConfiguration('vlcache').get<string>('modelPath');
      const r = await vscode.commands.executeCommand<{ path?: string; problem?: string }>('vlcache.selectModel', vscode.Uri.file(dir));
      assert.match(r?.problem ?? '', /is a "llama", not Qwen2-VL or Qwen2\.5-VL/);
      assert.equal(vscode.workspace.getConfiguration('vlcache').get<string>('modelPath'), before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a model folder that is not a model gives ModelLoadFailed, and the built-in model comes back', async () => {
    const a = await api();
    const bad = mkdtempSync(join(tmpdir(), 'vlcache-not-a-model-'));
    writeFileSync(join(bad, 'README.txt'), 'not a checkpoint');
    const config = vscode.workspace.getConfiguration('vlcache');
    try {
      await config.update('modelPath', bad, vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('vlcache.restartDaemon');
      await assert.rejects(a.daemon.ask({ images: [workspaceFile('docs/diagram.png').toString()], question: 'What?' }, () => {}),
        (e: { code?: number; message: string }) => e.code === ErrorCodes.ModelLoadFailed && e.message.includes(bad));
    } finally {
      await config.update('modelPath', undefined, vscode.ConfigurationTarget.Global);
      rmSync(bad, { recursive: true, force: true });
    }
    await vscode.commands.executeCommand('vlcache.restartDaemon');
    const s = await a.daemon.stats();
    assert.equal(s.model.path.endsWith('media/model'), true, s.model.path);
  });

  it('a daemon that cannot start (a bad setting) is reported, and Restart Daemon brings it back once fixed', async () => {
    const a = await api();
    const config = vscode.workspace.getConfiguration('vlcache');
    try {
      // settings.json can hold what the schema forbids; the daemon refuses it at initialize.
      await config.update('cache.ramBudgetMb', -1, vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('vlcache.restartDaemon');
      assert.equal(a.daemon.currentState, 'failed');
      assert.match(a.statusBar().text, /error/);
    } finally {
      await config.update('cache.ramBudgetMb', undefined, vscode.ConfigurationTarget.Global);
    }
    assert.equal(await vscode.commands.executeCommand('vlcache.restartDaemon'), 'running');
    assert.doesNotMatch(a.statusBar().text, /error/);
  });
});

describe('Stop, on a model that answers at length', () => {
  // The trained built-in model answers in a word; the golden tests' random-weight model runs
  // on to maxTokens, so an answer is still being generated when Stop is pressed. A relative
  // model path is taken from the workspace folder.
  const config = () => vscode.workspace.getConfiguration('vlcache');
  before(async () => {
    await config().update('modelPath', '../../golden/fixtures/qwen2vl-tiny', vscode.ConfigurationTarget.Global);
    await config().update('maxTokens', 4000, vscode.ConfigurationTarget.Global);
    assert.equal(await vscode.commands.executeCommand('vlcache.restartDaemon'), 'running');
  });
  after(async () => {
    await config().update('modelPath', undefined, vscode.ConfigurationTarget.Global);
    await config().update('maxTokens', undefined, vscode.ConfigurationTarget.Global);
    await vscode.commands.executeCommand('vlcache.restartDaemon');
  });

  /** Starts a long answer in the last answer view; resolves once its first words arrived (the daemon is answering it). */
  async function answering(a: VlcacheApi) {
    const panel = a.lastAnswerPanel();
    assert.ok(panel, 'no answer view is open');
    const pending = panel.ask('Describe every detail of this image.');
    const turn = panel.turns.at(-1)!;
    await until('the first words', () => turn.answer.length > 0);
    return { panel, pending };
  }

  it('Stop cancels the answer being generated and keeps the partial text', async () => {
    const { panel, pending } = await answering(await api());
    panel.stop();
    const turn = await pending;
    assert.equal(turn.state, 'cancelled');
    assert.ok(turn.result, 'a cancelled answer still returns its partial result');
    assert.equal(turn.result.stopReason, 'cancelled');
    assert.ok(turn.result.nGeneratedTokens > 0 && turn.result.nGeneratedTokens < 4000);
    assert.ok(turn.answer.length > 0);
    assert.equal(turn.result.images.length, panel.images.length);
  });

  it('Stop Mockup to Code (the status-bar item\'s command) stops a Mockup to Code in progress; the file stays, saved, marked PARTIAL', async () => {
    const mockup = workspaceFile('docs/chart.png');
    const run = vscode.commands.executeCommand<MockupOutcome | undefined>('vlcache.mockupToCode', mockup);
    const target = workspaceFile('docs/chart.html');
    try {
      // The code streams into the editor beside the mockup: wait for some of it below the header.
      await until('the code to stream in', () => {
        const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === target.toString());
        return doc && doc.lineCount > 1 && doc.getText().split('\n').slice(1).join('').length > 20 ? doc : undefined;
      });
      assert.equal(await vscode.commands.executeCommand('vlcache.stopMockupToCode'), 1, 'Stop found no run in progress');
      const out = await run;
      assert.ok(out, 'a stopped Mockup to Code still returns its file');
      assert.equal(out.result.stopReason, 'cancelled');
      assert.equal(out.document.isDirty, false);
      assert.match(out.document.lineAt(0).text, /^<!-- PARTIAL: VLCache Mockup to Code was stopped before the end/);
      assert.equal(await vscode.commands.executeCommand('vlcache.stopMockupToCode'), 0, 'a finished run is still listed as running');
      if (out.preview.kind === 'page') out.preview.panel.dispose();
    } finally {
      await run.then(undefined, () => undefined);
      await vscode.window.tabGroups.close(vscode.window.tabGroups.all.flatMap((g) => g.tabs)
        .filter((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === target.toString()));
      await Promise.resolve(vscode.workspace.fs.delete(target)).then(undefined, () => undefined);
    }
  });

  it('Stop returns even when the daemon hangs (stopped with SIGSTOP), and the daemon goes on after it resumes', async () => {
    const a = await api();
    const { panel, pending } = await answering(a);
    const pid = a.daemon.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      panel.stop();
      const t0 = Date.now();
      const turn = await pending;
      assert.equal(turn.state, 'cancelled');
      // The client gave up after its grace period: a confirmation from the daemon would carry a result.
      assert.equal(turn.result, undefined);
      assert.match(turn.error ?? '', /did not confirm/);
      assert.ok(Date.now() - t0 < 10_000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const r = await a.daemon.ask({ images: [workspaceFile('docs/diagram.png').toString()], question: 'And now?', maxTokens: 2 }, () => {});
    assert.notEqual(r.stopReason, 'cancelled');
    assert.ok(r.nGeneratedTokens > 0);
    assert.equal(a.daemon.pid, pid, 'the same daemon answered');
  });
});
