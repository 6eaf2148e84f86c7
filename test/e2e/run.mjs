// Runs the extension in a real VS Code, offline: code-server (the extension host in
// Node on this machine) with the workbench in headless Chromium, driven by
// playwright-core. See ../../../shared/TESTING-VSCODE.md for the recipe. Everything
// below runs in two editors, one after the other (scripts/e2e-setup.sh installs both):
//   oldest: code-server 4.100.3 = VS Code 1.100.3, the oldest engines.vscode allows;
//   newest: the code-server release pinned in e2e-setup.sh (the newest on npm), on Node 24.
// VLCACHE_E2E_EDITORS=oldest,newest (the default), oldest, or newest picks them.
// VLCACHE_E2E_ONLY=name,name (UI tests' names) runs only those UI tests: no extension tests, no .vsix
// (for working on a UI test; a run with it never counts as a full pass: it prints "(partial)").
//
//   (a) extension tests: out/test/e2e/index.js runs inside the extension host
//       (extensionTestsPath); its output and exit code come back through
//       page.exposeFunction('codeAutomationLog' / 'codeAutomationExit').
//   (b) UI smoke tests: drive the workbench DOM; each saves a screenshot to
//       test/e2e/screenshots/ (the newest editor's: test/e2e/screenshots/newest/).
//
// Exits 0 only when everything passed; the last line is "N passed, N failed" (both
// editors), after one such line per editor.
// Everything listens on 127.0.0.1 only. Run scripts/e2e-setup.sh first
// (npm run test:e2e does both).
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';
import { chromium } from 'playwright-core';
import { buildExtensionTests } from './build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cache = process.env.VLCACHE_E2E_CACHE ?? join(homedir(), '.cache', 'vlcache-e2e');
/** The newest code-server's version: pinned once, in scripts/e2e-setup.sh. */
const newestVersion = /^NEWEST_CODE_SERVER_VERSION=(\S+)/m.exec(readFileSync(join(root, 'scripts', 'e2e-setup.sh'), 'utf8'))[1];
/** The editors, in the order they run: { id, name, bin, screenshots }. */
const editors = [
  { id: 'oldest', name: 'code-server 4.100.3 (VS Code 1.100.3)', bin: process.env.VLCACHE_E2E_CODE_SERVER ?? join(cache, 'code-server-4.100.3', 'bin', 'code-server'), screenshots: join(root, 'test', 'e2e', 'screenshots') },
  { id: 'newest', name: `code-server ${newestVersion}`, bin: process.env.VLCACHE_E2E_CODE_SERVER_NEWEST ?? join(cache, `code-server-${newestVersion}`, 'bin', 'code-server'), screenshots: join(root, 'test', 'e2e', 'screenshots', 'newest'),
    // Newer VS Code honours the URL payload's extensionDevelopmentPath / extensionTestsPath only with the smoke-test driver on.
    args: ['--vscode-option', 'enable-smoke-test-driver'],
    // A Chat view (with no Copilot): the chat-view UI test runs there.
    chatView: true },
].filter((e) => (process.env.VLCACHE_E2E_EDITORS || 'oldest,newest').split(',').includes(e.id));
let codeServerBin; // the current editor's (set by runEditor)
let codeServerArgs = []; // the current editor's extra flags
let hasChatView = false; // the current editor's: whether it shows a Chat view (where chatView runs)
let editorName = ''; // the current editor's, for failedTitles
/** "editor: test: first line of the error", printed again at the very end (a CI log keeps only its tail). */
const failedTitles = [];
/** VLCACHE_E2E_ONLY: the UI tests to run (all of them, and the rest of the run, when unset). */
const only = process.env.VLCACHE_E2E_ONLY ? process.env.VLCACHE_E2E_ONLY.split(',') : undefined;
const chromiumBin = process.env.VLCACHE_E2E_CHROMIUM ?? '/usr/bin/chromium';
const workspace = join(root, 'test', 'fixtures', 'workspace');
let screenshots; // the current editor's folder
const version = JSON.parse(spawnSync('node', ['-p', 'JSON.stringify(require("./package.json").version)'], { cwd: root, encoding: 'utf8' }).stdout);

const STARTUP_TIMEOUT_MS = 30_000;
const EXTENSION_TESTS_TIMEOUT_MS = 120_000;
const UI_STEP_TIMEOUT_MS = 30_000;
const WATCHDOG_MS = 16 * 60_000; // both editors

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const log = (msg) => console.log(`[e2e ${elapsed()}] ${msg}`);

/** Throw-away folders for code-server (XDG, TMP, user data, extensions) and Chromium: fresh ones per editor. */
const scratchRoot = mkdtempSync(join(tmpdir(), 'vlcache-e2e-'));
let scratch;
let dirs;
function freshScratch(id) {
  scratch = mkdirp(join(scratchRoot, id));
  dirs = Object.fromEntries(
    ['userData', 'extensions', 'xdgConfig', 'xdgData', 'xdgCache', 'tmp', 'chromium'].map((k) => [k, mkdirp(join(scratch, k))]),
  );
}

const codeServers = []; // ChildProcesses, each in its own process group
let codeServerLog = '';
let context; // playwright BrowserContext (owns the Chromium process)
let cleanedUp = false;

async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (context) await context.close().catch(() => {});
  for (const cs of codeServers) await stopCodeServer(cs);
  rmSync(scratchRoot, { recursive: true, force: true });
}

async function stopCodeServer(cs) {
  if (cs.exitCode !== null || cs.signalCode !== null) return;
  const exited = new Promise((resolve) => cs.once('exit', resolve));
  try {
    process.kill(-cs.pid, 'SIGTERM'); // the whole group: code-server and its extension hosts
  } catch {}
  const timer = setTimeout(() => {
    try {
      process.kill(-cs.pid, 'SIGKILL');
    } catch {}
  }, 5000);
  await exited;
  clearTimeout(timer);
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`[e2e] ${sig}: stopping code-server and Chromium`);
    void cleanup().finally(() => process.exit(130));
  });
}
// Last resort when the process exits some other way: kill the group synchronously.
process.on('exit', () => {
  for (const cs of codeServers) {
    if (cs.exitCode !== null) continue;
    try {
      process.kill(-cs.pid, 'SIGKILL');
    } catch {}
  }
});

function buildAll() {
  const r = spawnSync(process.execPath, ['esbuild.mjs'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('node esbuild.mjs failed');
  return buildExtensionTests();
}

/** Starts code-server on 127.0.0.1 (port 0: the OS picks a free one) and resolves with its URL. */
function startCodeServer({ extensionsDir = dirs.extensions } = {}) {
  writeFileSync(
    join(mkdirp(join(dirs.userData, 'User')), 'settings.json'),
    JSON.stringify({
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'workbench.enableExperiments': false,
      'telemetry.telemetryLevel': 'off',
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'update.mode': 'none',
      'security.workspace.trust.enabled': false,
      'git.openRepositoryInParentFolders': 'never', // the fixture lives inside this repository
    }),
  );
  const args = [
    '--auth', 'none',
    '--bind-addr', '127.0.0.1:0',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--user-data-dir', dirs.userData,
    '--extensions-dir', extensionsDir,
    ...codeServerArgs,
  ];
  const codeServer = spawn(codeServerBin, args, {
    cwd: root,
    detached: true, // its own process group, so cleanup() can stop every child
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      XDG_CONFIG_HOME: dirs.xdgConfig,
      XDG_DATA_HOME: dirs.xdgData,
      XDG_CACHE_HOME: dirs.xdgCache,
      TMPDIR: dirs.tmp,
      // No extension marketplace (code-server defaults to open-vsx.org): nothing leaves 127.0.0.1.
      EXTENSIONS_GALLERY: '{}',
    },
  });
  codeServers.push(codeServer);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`code-server did not listen within ${STARTUP_TIMEOUT_MS} ms`)), STARTUP_TIMEOUT_MS);
    let own = ''; // this server's output (codeServerLog has every server's)
    const onData = (chunk) => {
      codeServerLog += chunk;
      own += chunk;
      const m = /HTTP server listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(own);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], port: Number(m[2]), process: codeServer });
      }
    };
    codeServer.stdout.setEncoding('utf8').on('data', onData);
    codeServer.stderr.setEncoding('utf8').on('data', onData);
    codeServer.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${codeServerBin}: ${e.message} (run scripts/e2e-setup.sh)`));
    });
    codeServer.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`code-server exited (${code ?? signal}) before listening`));
    });
  });
}

function mkdirp(d) {
  mkdirSync(d, { recursive: true });
  return d;
}

/** The workbench URL with the extension loaded from the repository (and optionally its tests). */
function workbenchUrl(server, { tests = false, folder = workspace } = {}) {
  const remote = (p) => `vscode-remote://127.0.0.1:${server.port}${p}`;
  const payload = [['extensionDevelopmentPath', remote(root)]];
  if (tests) payload.push(['extensionTestsPath', remote(join(root, 'out', 'test', 'e2e', 'index.js'))]);
  return `${server.url}/?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

async function launchChromium() {
  context = await chromium.launchPersistentContext(dirs.chromium, {
    executablePath: chromiumBin,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  // Any request that leaves 127.0.0.1 is a bug in the test set-up: refuse it.
  await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
}

/** (a) The extension tests, inside the extension host. Returns { passed, failed }. */
async function runExtensionTests(server) {
  const page = await context.newPage();
  let output = '';
  let settle;
  const exited = new Promise((resolve) => (settle = resolve));
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const text = format(...(Array.isArray(args) ? args : [args])); // console.log's "%s %d" arguments
    output += text + '\n';
    for (const line of text.split('\n')) console.log(`  | ${line}`);
  });
  await page.exposeFunction('codeAutomationExit', (code) => settle(code));
  log('extension tests: opening the workbench');
  await page.goto(workbenchUrl(server, { tests: true }));
  let timer;
  const code = await Promise.race([
    exited,
    new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), EXTENSION_TESTS_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  await page.close().catch(() => {});
  for (const [, what] of output.matchAll(/^extension test failed: (.*)$/gm)) failedTitles.push(`${editorName}: ${what}`);
  const m = /extension tests: (\d+) passed, (\d+) failed/.exec(output);
  const counts = m ? { passed: Number(m[1]), failed: Number(m[2]) } : { passed: 0, failed: 0 };
  if (code === 'timeout') {
    log(`extension tests: no exit code within ${EXTENSION_TESTS_TIMEOUT_MS} ms`);
    failedTitles.push(`${editorName}: extension tests: no exit code within ${EXTENSION_TESTS_TIMEOUT_MS} ms`);
    counts.failed += 1;
  } else if (code !== 0 && counts.failed === 0) {
    log(`extension tests: exit code ${code} with no test failure reported (the runner itself failed)`);
    failedTitles.push(`${editorName}: extension tests: exit code ${code} with no test failure reported`);
    counts.failed += 1;
  } else {
    log(`extension tests: exit code ${code}`);
  }
  return counts;
}

/** Runs a command from the palette by its title. */
async function runCommand(page, title) {
  // The palette lists what was registered when it was filled and does not refresh: while the extension's
  // contributions are still being registered (the first command after the window opens), close it and ask again.
  const row = page.locator('.quick-input-list .monaco-list-row').filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) }).first();
  for (let attempt = 1; ; attempt++) {
    await quickOpen(page, `>${title}`);
    if (await row.waitFor({ timeout: 5000 }).then(() => true, () => false)) break;
    if (attempt === 6) throw new Error(`the command palette never listed "${title}"`);
    await page.keyboard.press('Escape');
  }
  // The row itself, not Enter: the highlighted row may be another that matches better ("Preferences: Browse Color
  // Themes in Marketplace" comes before "Preferences: Color Theme").
  await row.click();
}

/**
 * Quick Open by keyboard, with `text` typed into it: F1, and the typed text replacing its '>' (the file picker for a
 * plain name, the open editors for 'edt '). In code-server 4.100.3, right after a webview editor was activated, F1
 * was now and then lost or the picker closed at once as the webview took the focus late (the keyboard test's
 * failures in CI): it is opened again then.
 */
async function quickOpen(page, text) {
  const input = page.locator('.quick-input-widget input');
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    // F1 can be lost as a webview takes the focus, and Quick Open closes when something takes the focus from it;
    // then it is opened again. (The command palette is the same picker: runCommand goes through here.)
    const opened = await input.waitFor({ state: 'visible', timeout: 5000 }).then(() => true, () => false);
    if (opened && await input.fill(text, { timeout: 5000 }).then(() => true, () => false)) return input;
    const focus = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120));
    log(`    Quick Open ${opened ? 'closed before' : 'did not open for'} "${text}" (focus: ${focus}); attempt ${attempt}`);
    if (attempt === 3) throw new Error(`Quick Open never took "${text}" (3 attempts)`);
  }
}

/** Opens a workspace file with Quick Open. */
async function openFile(page, name) {
  await quickOpen(page, name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active', { hasText: name }).waitFor();
}

/** The first frame (webviews nest two iframes deep) where `selector` matches, polled until `timeoutMs`. */
async function frameWith(page, selector, timeoutMs = UI_STEP_TIMEOUT_MS) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const f of page.frames()) {
      if (await f.locator(selector).count().catch(() => 0)) return f;
    }
    if (Date.now() > end) {
      for (const f of page.frames()) log(`    frame ${f.url().slice(0, 120)}: ${(await f.content().catch((e) => e.message)).slice(0, 400).replace(/\s+/g, ' ')}`);
      throw new Error(`no frame shows ${selector} after ${timeoutMs} ms`);
    }
    await page.waitForTimeout(100);
  }
}

/** The VLCache status-bar item's text. */
async function statusBarText(page) {
  return (await page.locator('.statusbar-item', { hasText: 'VLCache' }).first().innerText()).replace(/\s+/g, ' ').trim();
}

/** The status bar's share of images reused (the badge's own count); 0 before the first image. */
const hitPercent = (text) => (/no images yet/.test(text) ? 0 : Number(/(\d+)% images reused/.exec(text)?.[1] ?? NaN));

/**
 * Opens the explorer's context menu on docs/diagram.png and runs `title` from it.
 * NOTE: not from the image preview: in code-server 4.100 under headless Chromium a
 * second webview opened beside the image preview (itself a webview) can wait forever
 * for its service worker ("Found unexpected service worker controller").
 */
async function fromExplorerMenu(page, title, image = 'diagram.png') {
  const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: image }).first();
  if (!(await row.isVisible())) await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'docs' }).first().click();
  await row.click({ button: 'right' });
  // The menu item: hovered, then Enter (a synthetic click right after the menu opens is sometimes lost).
  const item = page.locator('.context-view .action-item', { hasText: title }).first();
  await item.hover();
  await page.locator('.context-view .action-item.focused', { hasText: title }).waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.context-view .action-item').first().waitFor({ state: 'detached' });
}

/** The answer view's frame once turn `n` (1-based) is done. */
async function finishedTurn(page, n) {
  return frameWith(page, `.turn:nth-of-type(${n}):not(.streaming) .badge`, 60_000);
}

/** Runs "Explain Diagram" on docs/diagram.png and returns the badge of the view's turn `nTurnsBefore + 1` once done. */
async function explainDiagram(page, nTurnsBefore) {
  await fromExplorerMenu(page, 'Explain Diagram');
  const frame = await finishedTurn(page, nTurnsBefore + 1);
  return frame.locator(`.turn:nth-of-type(${nTurnsBefore + 1}) .badge`).innerText();
}

/**
 * Keyboard-only use of the answer view (issue 11 item 7): after an answer, the keyboard alone reaches the view and its
 * follow-up box, asks a follow-up, then reaches a code block's Insert and Copy buttons (visible focus ring, AA
 * contrast) and presses them: the code replaces the selected first line of src/app.ts, then is on the clipboard.
 * The built-in model answers in one word and never writes a code block, so one is added to the follow-up's answer
 * the way the extension posts answers to the page ({ type: 'answer', html }); everything after that is real.
 */
async function keyboardOnlyAnswerView(page) {
  const CODE = 'export const inserted = 42;';
  // The answer (opened with the explorer's menu); its turn number: the turns there were before, plus one.
  const nBefore = await (async () => {
    for (const f of page.frames()) {
      const n = await f.locator('#turns .turn').count().catch(() => 0);
      if (n) return n;
    }
    return 0;
  })();
  await fromExplorerMenu(page, 'Explain Diagram');
  const frame = await finishedTurn(page, nBefore + 1);
  // An editor to insert into, by keyboard: Quick Open src/app.ts, select its first line.
  await openFile(page, 'app.ts');
  await page.locator('.editor-group-container.active .monaco-editor.focused').waitFor();
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('Shift+End');
  await page.locator('.editor-group-container.active .monaco-editor .selected-text').first().waitFor();
  const active = () => frame.evaluate(() => ({ focused: document.hasFocus(), id: document.activeElement?.id ?? '',
    action: document.activeElement instanceof HTMLElement ? document.activeElement.dataset.action ?? '' : '' }));
  // An answer that ends while the user is in another editor leaves the focus there (the view posts 'busy: false' as
  // an answer ends; the follow-up box takes the focus only when the view has it). The page handles the message
  // synchronously, so the focus is checked in the same evaluation, with no wait.
  const tookFocus = await frame.evaluate(() => {
    window.dispatchEvent(new MessageEvent('message', { data: { type: 'busy', busy: false } }));
    return document.hasFocus();
  });
  if (tookFocus || !(await page.locator('.editor-group-container.active .monaco-editor.focused').count())) {
    throw new Error(`an answer's end took the focus from the editor (workbench focus: ${await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 160))})`);
  }
  // To the answer view by keyboard: Quick Open's list of open editors, then View: Focus Active Editor Group (the
  // editor Quick Open shows is not always given the focus when it is a webview).
  const toAnswerView = async () => {
    const input = await quickOpen(page, 'edt VLCache: diagram.png');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'VLCache: diagram.png' }).first().waitFor();
    await page.keyboard.press('Enter');
    await input.waitFor({ state: 'hidden' });
    await runCommand(page, 'View: Focus Active Editor Group');
    const end = Date.now() + 10_000;
    while (!(await active()).focused) {
      if (Date.now() > end) throw new Error(`the answer view never had the focus (workbench focus: ${await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 160))})`);
      await page.waitForTimeout(100);
    }
  };
  await toAnswerView();
  // Focus coming to the view lands in the follow-up box.
  const first = await active();
  if (first.id !== 'question') throw new Error(`the view has the focus, its follow-up box does not ("${first.id}" has it)`);
  await page.keyboard.type('How many boxes are there?');
  await page.keyboard.press('Enter');
  await finishedTurn(page, nBefore + 2);
  const followUp = nBefore + 1; // 0-based index of the follow-up's turn
  const answer = (await frame.locator(`#turn-${followUp} .answer`).innerText()).trim();
  if (!answer) throw new Error('the follow-up has no answer');
  // The box takes the focus back when the answer ends.
  const after = await active();
  if (after.id !== 'question') throw new Error(`after the answer the focus is on "${after.id}", not the follow-up box`);
  await frame.evaluate(([i, code]) => {
    const html = `${document.querySelector(`#turn-${i} .answer`)?.innerHTML ?? ''}<pre><code class="language-ts">${code}\n</code></pre>`;
    window.dispatchEvent(new MessageEvent('message', { data: { type: 'answer', index: i, html } }));
  }, [followUp, CODE]);
  // Shift+Tab from the follow-up box back to the code block's Copy (past New File and Insert).
  const reach = async (action, key) => {
    for (let n = 0; n < 20; n++) {
      if ((await active()).action === action) return;
      await page.keyboard.press(key);
    }
    throw new Error(`${key} never reached the code block's ${action} button`);
  };
  await reach('copy', 'Shift+Tab');
  const look = await frame.evaluate(() => {
    const b = /** @type {HTMLElement} */ (document.activeElement);
    const style = getComputedStyle(b);
    const rgb = (c) => (c.match(/[\d.]+/g) ?? []).slice(0, 3).map(Number);
    const lum = (c) => { const v = rgb(c).map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; }); return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
    const [hi, lo] = [lum(style.color), lum(getComputedStyle(document.body).backgroundColor)].sort((x, y) => y - x);
    return { label: b.getAttribute('aria-label'), ring: b.matches(':focus-visible') ? `${style.outlineStyle} ${style.outlineWidth}` : 'none',
      contrast: (hi + 0.05) / (lo + 0.05) };
  });
  log(`    Copy button: "${look.label}", focus ring ${look.ring}, contrast ${look.contrast.toFixed(1)}:1`);
  if (!/^Copy: code block 1 \(ts\)/.test(look.label ?? '')) throw new Error(`the Copy button's aria-label is "${look.label}"`);
  if (!/^solid [1-9]/.test(look.ring)) throw new Error(`the focused Copy button shows no focus ring (${look.ring})`);
  if (look.contrast < 4.5) throw new Error(`the Copy button's text contrast is ${look.contrast.toFixed(2)}:1 (< 4.5)`);
  await page.screenshot({ path: join(screenshots, 'answer-view-keyboard-focus.png') });
  // Copy with Space: the clipboard holds the block.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(page.url()).origin });
  await page.keyboard.press('Space');
  const end = Date.now() + 10_000;
  for (let clip = ''; clip.trim() !== CODE; clip = await page.evaluate(() => navigator.clipboard.readText()).catch((e) => `(${e.message})`)) {
    if (Date.now() > end) throw new Error(`the clipboard holds "${clip.slice(0, 80)}", not the code block`);
    await page.waitForTimeout(200);
  }
  // Tab to Insert, Enter: the code replaces the selected first line of src/app.ts, brought back into view.
  await reach('insert', 'Tab');
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active', { hasText: 'app.ts' }).waitFor();
  const lines = page.locator('.editor-group-container.active .monaco-editor .view-line');
  await lines.filter({ hasText: CODE }).first().waitFor();
  const shown = (await lines.allInnerTexts()).map((l) => l.replace(/\u00a0/g, ' ').trimEnd());
  if (!shown.includes(CODE) || shown.some((l) => l.includes('A string literal naming a workspace image'))) {
    throw new Error(`src/app.ts shows ${JSON.stringify(shown)}: the code block did not replace the selected first line`);
  }
}

/**
 * `@vlcache` in the Chat view, where the editor has one (`chatView`) but no Copilot (none can be signed in offline):
 * the participant and its commands are offered, docs/diagram.png pasted from the clipboard attaches to the question,
 * and the request goes to VLCache — where VS Code itself stops it: VS Code 1.139 calls an extension's participant only
 * with a language model for the request (the picker's, else Copilot's default; extHostChatAgents2.getModelForRequest),
 * and offers no model without a Copilot sign-in, so it answers "Language model unavailable" for every participant.
 * The answer itself is tested through the participant's handler (extension.test.ts, "chat participant").
 */
async function chatView(page) {
  await runCommand(page, 'Chat: Open Chat');
  const session = page.locator('.interactive-session').first();
  const input = session.locator('.interactive-input-part .monaco-editor').first();
  await input.waitFor();
  await input.click();
  // The participant's commands in the completion list.
  await page.keyboard.type('@vlcache /');
  await page.keyboard.press('Control+Space');
  const suggest = page.locator('.suggest-widget .monaco-list-row');
  for (const command of ['explain', 'mockup']) await suggest.filter({ hasText: command }).first().waitFor();
  await page.keyboard.press('Escape');
  await page.keyboard.press('Backspace');
  // The image's bytes on the clipboard, as a screenshot tool leaves them; Ctrl+V attaches them to the question.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(page.url()).origin });
  const png = readFileSync(join(workspace, 'docs', 'diagram.png')).toString('base64');
  await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    await navigator.clipboard.write([new ClipboardItem({ 'image/png': new Blob([bytes], { type: 'image/png' }) })]);
  }, png);
  await page.keyboard.press('Control+V');
  await session.locator('.interactive-input-part', { hasText: 'Pasted Image' }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.type(' How many boxes are there?');
  await page.screenshot({ path: join(screenshots, 'chat-view-question.png') });
  await page.keyboard.press('Enter');
  const response = session.locator('.interactive-item-container.interactive-response').first();
  await response.locator('text=VLCache').first().waitFor();
  await response.locator('text=Language model unavailable').first().waitFor({ timeout: 20_000 });
  log(`    the request: "${(await session.locator('.interactive-item-container.interactive-request').first().innerText()).replace(/\s+/g, ' ').trim()}"; ` +
    `the response: "${(await response.innerText()).replace(/\s+/g, ' ').trim().slice(0, 200)}" (VS Code's, for want of a model)`);
}

/** The themes the contrast test checks, with the classes VS Code puts on a webview's body and the workbench for each. */
const THEMES = [
  { name: 'Light Modern', kind: 'vscode-light', workbench: 'vs' },
  { name: 'Dark Modern', kind: 'vscode-dark', workbench: 'vs-dark' },
  { name: 'Dark High Contrast', kind: 'vscode-high-contrast', workbench: 'hc-black' },
  { name: 'Light High Contrast', kind: 'vscode-high-contrast-light', workbench: 'hc-light' },
];

/** Preferences: Color Theme, then the theme picked by name (typed into its filter). */
async function setColorTheme(page, theme) {
  // Keys pressed while a webview has the focus (the follow-up box takes it after an answer) do not reach the
  // workbench: give the focus to the side bar's title first (opening nothing).
  await page.locator('.part.sidebar .composite.title').first().click();
  await runCommand(page, 'Preferences: Color Theme');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(theme.name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: theme.name }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator(`.monaco-workbench.${theme.workbench}`).waitFor();
}

/**
 * Runs in a webview's page: the WCAG 2.1 contrast of every visible text against what is behind it (the nearest
 * ancestor with a background colour, blended over the page's), SVG text by its fill. Text needs 4.5:1 (3:1 when
 * large: 24px, or 18.66px bold); glyphs that stand for colours (■, aria-hidden) and the chart's bars are graphics and
 * need 3:1 (1.4.11).
 */
function contrastOfEveryText() {
  const rgba = (c) => { const v = (c.match(/[\d.]+/g) ?? ['0', '0', '0', '0']).map(Number); return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
  const over = (top, under) => { const a = top[3]; return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat(1); };
  const lum = (c) => { const v = c.slice(0, 3).map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; }); return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const ratio = (a, b) => { const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x); return (hi + 0.05) / (lo + 0.05); };
  // Behind a page whose body has no background (its stylesheet not applied yet, say), VS Code shows the theme's
  // editor background, not white.
  const probe = document.createElement('div');
  probe.style.background = 'var(--vscode-editor-background, #fff)';
  document.body.append(probe);
  const editor = rgba(getComputedStyle(probe).backgroundColor);
  probe.remove();
  const body = rgba(getComputedStyle(document.body).backgroundColor);
  const page = body[3] > 0 ? body : editor;
  const background = (el) => {
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const bg = rgba(getComputedStyle(e).backgroundColor);
      if (bg[3] > 0) layers.push(bg);
      if (bg[3] >= 1) break;
    }
    return layers.reverse().reduce((under, top) => over(top, under), page[3] > 0 ? page : [255, 255, 255, 1]);
  };
  const failures = [];
  let checked = 0, lowest = Infinity, lowestText = '';
  /** `colour` (blended over what is behind `behind`) against that background: recorded, and a failure under `needed`. */
  const check = (label, colour, behind, needed) => {
    const bg = background(behind);
    const fg = over(rgba(colour), bg);
    const r = ratio(fg, bg);
    checked++;
    if (r < lowest) { lowest = r; lowestText = label.slice(0, 40); }
    if (r < needed - 0.005) failures.push({ text: label.slice(0, 60), ratio: r, needed, fg: `rgb(${fg.slice(0, 3).map(Math.round)})`, bg: `rgb(${bg.slice(0, 3).map(Math.round)})` });
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    const el = n.parentElement;
    if (!text || !el || el.closest('script, style, title')) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || style.display === 'none' || box.width === 0 || box.height === 0 || Number(style.opacity) === 0) continue;
    if (el.closest('details:not([open])') && !el.closest('summary')) continue;
    const svg = el instanceof SVGElement;
    const size = parseFloat(style.fontSize);
    const graphic = /^[■●▮█]+$/.test(text) || el.closest('[aria-hidden="true"]');
    const needed = graphic ? 3 : size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700) ? 3 : 4.5;
    check(text, svg ? style.fill : style.color, svg ? el.closest('svg') : el, needed);
  }
  // The chart's bars are graphics that carry meaning (hit, partly, cold): 3:1 against the page too.
  for (const rect of document.querySelectorAll('svg rect[class]')) check(`bar ${rect.getAttribute('class')}`, getComputedStyle(rect).fill, rect.closest('svg'), 3);
  return { checked, lowest, lowestText, failures };
}

/** (b) UI smoke tests: each is a name and a function of the page; each saves a screenshot. They run in order. */
const ui = { statusAfterFirstAnswer: '' };
const uiTests = [
  {
    name: 'show-version',
    title: 'VLCache: Show Version from the command palette shows a notification with the version',
    async run(page) {
      await runCommand(page, 'VLCache: Show Version');
      const toast = page.locator('.notifications-toasts .notification-toast', { hasText: `VLCache ${version}` });
      if (!(await toast.waitFor({ timeout: 10_000 }).then(() => true, () => false))) {
        // VS Code 1.139 (code-server 4.139.1) posts it without a toast: it is in the notification center.
        log('    no toast: looking in the notification center');
        await runCommand(page, 'Notifications: Show Notifications');
        await page.locator('.notifications-center', { hasText: `VLCache ${version}` }).waitFor();
      }
    },
  },
  {
    name: 'explain-diagram',
    title: 'Explain Diagram on the open image streams an answer into the answer view, with a cold-cache badge',
    async run(page) {
      const badge = await explainDiagram(page, 0);
      if (!/^cold · TTFT \d+/.test(badge)) throw new Error(`the first answer's badge is "${badge}", not a cold one`);
      const frame = await frameWith(page, '.turn .answer');
      const answer = (await frame.locator('.turn .answer').first().innerText()).trim();
      if (!answer) throw new Error('the answer is empty');
      await page.locator('.statusbar-item', { hasText: /TTFT/ }).first().waitFor();
      ui.statusAfterFirstAnswer = await statusBarText(page);
    },
  },
  {
    name: 'ask-about-image',
    title: 'Ask About Image… from the explorer: type a question in the input box, read the answer (a count) in the view',
    async run(page) {
      await fromExplorerMenu(page, 'Ask About Image');
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible' });
      await input.fill('How many boxes are there?');
      await page.keyboard.press('Enter');
      const frame = await finishedTurn(page, 2);
      const answer = (await frame.locator('.turn:nth-of-type(2) .answer').innerText()).trim();
      // The built-in model answers counts with a number (the fixture diagram is the demo diagram: 4 boxes).
      if (!/^\d{1,2}$/.test(answer)) throw new Error(`the answer to "How many boxes are there?" is "${answer}", not a number`);
      log(`    answer: ${answer}`);
    },
  },
  {
    name: 'hover-markdown-image',
    title: 'hovering ![](docs/diagram.png) in README.md shows the explanation, timing and Ask / Explain links',
    async run(page) {
      await openFile(page, 'README.md');
      // The code lenses move the lines down when they arrive: wait for them so the link stays put.
      await page.locator('.monaco-editor .codelens-decoration').first().waitFor();
      const link = page.locator('.monaco-editor .view-line span', { hasText: /^docs\/diagram\.png$/ }).first();
      await link.waitFor();
      const hover = page.locator('.monaco-hover:not(.hidden)');
      // The first hover may say the explanation is being prepared; hover again until it is there.
      const end = Date.now() + 60_000;
      for (;;) {
        await page.mouse.move(5, 5);
        await link.hover();
        const shown = await hover.first().waitFor({ timeout: 5000 }).then(() => true, () => false);
        const text = shown ? await hover.first().innerText() : '';
        if (/TTFT/.test(text)) break;
        if (Date.now() > end) throw new Error(`the hover still says: "${text.slice(0, 200)}"`);
        await page.waitForTimeout(500);
      }
      // Our part: the Ask / Explain command links (the image itself is VS Code's own Markdown preview, not ours).
      const ask = hover.locator('a', { hasText: 'Ask about this image' }).first();
      await ask.waitFor();
      await page.screenshot({ path: join(screenshots, 'hover-markdown-image-links.png') });
      // The link runs the command with its image (trusted hover Markdown): Ask's input box names the image.
      await ask.click();
      await page.locator('.quick-input-widget', { hasText: 'Ask about docs/diagram.png' }).waitFor({ state: 'visible' });
      await page.keyboard.press('Escape');
    },
  },
  {
    name: 'status-bar-cache-hit',
    title: 'the status bar before and after a repeated question: the hit rate rises and the answer is a cache hit',
    async run(page) {
      const before = await statusBarText(page);
      const badge = await explainDiagram(page, 2);
      if (!/^⚡ image reused \((KV|prefix), (RAM|disk)\)/.test(badge)) throw new Error(`the repeated question's badge is "${badge}", not an image reuse`);
      let after = '';
      const end = Date.now() + UI_STEP_TIMEOUT_MS;
      while (!(hitPercent(after) > hitPercent(before))) {
        if (Date.now() > end) throw new Error(`status bar "${before}" → "${after}": the hit rate did not rise`);
        await page.waitForTimeout(100);
        after = await statusBarText(page);
      }
      log(`    status bar after the first answer: "${ui.statusAfterFirstAnswer}"; before: "${before}"; after the hit: "${after}"`);
    },
  },
  {
    name: 'cache-statistics',
    title: 'clicking the status bar opens Cache Statistics: hit rate, tiers and the TTFT chart of the requests so far',
    async run(page) {
      await page.locator('.statusbar-item', { hasText: 'VLCache' }).first().click();
      const frame = await frameWith(page, '#hit-rate');
      const rate = await frame.locator('#hit-rate').innerText();
      if (!/^\d+%$/.test(rate)) throw new Error(`hit rate "${rate}"`);
      const bars = await frame.locator('svg.chart rect').count();
      const hits = await frame.locator('svg.chart rect.hit').count();
      if (bars < 2 || hits < 1) throw new Error(`the TTFT chart has ${bars} bars, ${hits} of them hits`);
      await frame.locator('table td', { hasText: 'RAM' }).first().waitFor();
    },
  },
  {
    name: 'answer-view-restored',
    title: 'after a window reload the answer view comes back with its conversation, and a follow-up typed there is answered',
    async run(page) {
      // The web workbench writes webview state to its storage on a timer, not at every change:
      // give it time to hold the last answer before the reload.
      await page.waitForTimeout(8000);
      await page.reload();
      await page.locator('.monaco-workbench .part.editor').waitFor();
      await page.locator('.tabs-container .tab', { hasText: 'VLCache: diagram.png' }).first().click();
      const frame = await finishedTurn(page, 3);
      const restored = await frame.locator('.turn').count();
      if (restored !== 3) throw new Error(`${restored} turns restored, not 3`);
      await frame.locator('#question').fill('How many boxes are there?');
      await frame.locator('#question').press('Enter');
      await finishedTurn(page, 4);
      const answer = (await frame.locator('.turn:nth-of-type(4) .answer').innerText()).trim();
      if (!/^\d{1,2}$/.test(answer)) throw new Error(`the follow-up's answer is "${answer}", not a number`);
      log(`    follow-up after the reload: ${answer} (${await frame.locator('.turn:nth-of-type(4) .badge').innerText()})`);
      // The statistics view came back too, with fresh figures.
      await page.locator('.tabs-container .tab', { hasText: 'VLCache: Cache Statistics' }).first().click();
      const stats = await frameWith(page, '#hit-rate');
      await stats.locator('svg.chart rect').first().waitFor();
    },
  },
  {
    name: 'one-answer-panel',
    title: 'asking about another image (chart.png after diagram.png) answers in the same, single answer panel',
    async run(page) {
      await fromExplorerMenu(page, 'Ask About Image', 'chart.png');
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible' });
      await input.fill('What is this?');
      await page.keyboard.press('Enter');
      const frame = await finishedTurn(page, 5);
      // Both image sets in one conversation: the thumbnails of chart.png above its question.
      const sets = await frame.locator('header.images figcaption').allInnerTexts();
      if (sets.at(-1) !== 'chart.png' || !sets.includes('diagram.png')) throw new Error(`thumbnails: ${sets.join(', ')}`);
      await page.locator('.tabs-container .tab', { hasText: 'VLCache: chart.png' }).first().waitFor();
      const tabs = (await page.locator('.tabs-container .tab').allInnerTexts()).map((t) => t.trim()).filter((t) => /^VLCache: (?!Cache Statistics)/.test(t));
      if (tabs.length !== 1) throw new Error(`${tabs.length} answer tabs: ${tabs.join(' | ')}`);
      // chart.png is new: whatever came from the cache before it, its badge must not say every image was reused.
      const badge = frame.locator('.turn:nth-of-type(5) .badge');
      const [text, tone] = [await badge.innerText(), await badge.getAttribute('class')];
      log(`    chart.png's badge: "${text}" (${tone})`);
      if (/⚡/.test(text) || /\bhit\b/.test(tone ?? '') || !/\bcold\b/.test(text)) throw new Error(`a new image's badge says "${text}" (${tone})`);
    },
  },
  {
    name: 'chat-view',
    title: 'Chat view (no Copilot): @vlcache and its /explain and /mockup are offered, a pasted image attaches, the request goes to VLCache and VS Code stops it ("Language model unavailable")',
    chatView: true,
    run: chatView,
  },
  {
    name: 'answer-view-keyboard',
    title: 'keyboard only: to the answer view and its follow-up box, a follow-up, a code block\'s Insert (into the editor) and Copy (clipboard)',
    run: keyboardOnlyAnswerView,
  },
  {
    name: 'contrast',
    title: 'WCAG AA contrast of every text in the answer view and Cache Statistics, in light, dark and both high-contrast themes',
    async run(page) {
      const failures = [];
      for (const theme of THEMES) {
        await setColorTheme(page, theme);
        for (const [tab, selector] of [['VLCache: diagram.png', '.turn .badge'], ['VLCache: Cache Statistics', '#hit-rate']]) {
          await page.locator('.tabs-container .tab', { hasText: tab }).first().click();
          const frame = await frameWith(page, selector);
          // The page takes the theme's colours when VS Code posts them: wait until its body says the theme's kind.
          await frame.waitForFunction((k) => document.body.classList.contains(k), theme.kind, { timeout: 10_000 });
          const report = await frame.evaluate(contrastOfEveryText);
          log(`    ${theme.name}, ${tab}: ${report.checked} texts, lowest ${report.lowest.toFixed(2)}:1 (${report.lowestText})`);
          for (const f of report.failures) failures.push(`${theme.name}, ${tab}: "${f.text}" ${f.fg} on ${f.bg} = ${f.ratio.toFixed(2)}:1 < ${f.needed}`);
        }
        await page.screenshot({ path: join(screenshots, `contrast-${theme.kind}.png`) });
      }
      await setColorTheme(page, THEMES[0]);
      for (const f of failures) log(`    below AA: ${f}`);
      if (failures.length) throw new Error(`${failures.length} texts below WCAG AA: ${failures.join('; ')}`);
    },
  },
];

async function runUiTests(server) {
  mkdirSync(screenshots, { recursive: true });
  const page = await context.newPage();
  page.setDefaultTimeout(UI_STEP_TIMEOUT_MS);
  page.on('console', (m) => { if (m.type() === 'error' || /webview|CSP|Refused/i.test(m.text())) log(`    console ${m.type()}: ${m.text().slice(0, 300)}`); });
  // A copy of the fixture workspace: its own workspace storage, so its cache starts empty.
  const folder = join(scratch, 'ui-workspace');
  cpSync(workspace, folder, { recursive: true });
  log('UI tests: opening the workbench');
  await page.goto(workbenchUrl(server, { folder }));
  await page.locator('.monaco-workbench .part.editor').waitFor();
  // The explorer shows the fixture workspace once the remote file system is up.
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'README.md' }).first().waitFor();
  const counts = { passed: 0, failed: 0 };
  for (const t of uiTests.filter((t) => (!only || only.includes(t.name)) && (!t.chatView || hasChatView))) {
    const shot = join(screenshots, `${t.name}.png`);
    const started = Date.now();
    try {
      await t.run(page);
      await page.screenshot({ path: shot });
      counts.passed += 1;
      log(`  ✔ ${t.title} (${Date.now() - started} ms) -> ${shot}`);
    } catch (e) {
      await page.screenshot({ path: shot }).catch(() => {});
      counts.failed += 1;
      failedTitles.push(`${editorName}: ${t.title}: ${e.message.split('\n')[0]}`);
      log(`  ✖ ${t.title}: ${e.message.split('\n')[0]} -> ${shot}`);
    }
  }
  await page.close().catch(() => {});
  return counts;
}

/** The extension's output channel (VLCache.log: the client and the daemon's stderr), for a failed run. */
function printExtensionLogs() {
  const logs = readdirSync(join(dirs.userData, 'logs'), { recursive: true, encoding: 'utf8' }).filter((f) => /VLCache\.log$/.test(f));
  for (const f of logs) {
    console.error(`--- ${f} (last 6000 characters) ---`);
    console.error(readFileSync(join(dirs.userData, 'logs', f), 'utf8').slice(-6000));
  }
}

/**
 * (c) The packaged extension: `npm run package`'s .vsix installed into a fresh
 * extensions folder of a second code-server (no development path), then Explain
 * Diagram from the explorer's context menu must stream an answer.
 */
async function runInstalledVsix() {
  const vsix = join(scratch, 'vlcache.vsix');
  const built = spawnSync(process.execPath, ['scripts/package.mjs', '--out', vsix], { cwd: root, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`npm run package failed: ${built.stderr || built.stdout}`);
  const extensionsDir = mkdirp(join(scratch, 'vsix-extensions'));
  const installed = spawnSync(codeServerBin, ['--extensions-dir', extensionsDir, '--user-data-dir', dirs.userData, '--install-extension', vsix],
    { encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: dirs.xdgConfig, XDG_DATA_HOME: dirs.xdgData, TMPDIR: dirs.tmp } });
  if (installed.status !== 0) throw new Error(`code-server --install-extension failed: ${installed.stderr || installed.stdout}`);
  const server = await startCodeServer({ extensionsDir });
  const folder = join(scratch, 'vsix-workspace');
  cpSync(workspace, folder, { recursive: true });
  const page = await context.newPage();
  page.setDefaultTimeout(UI_STEP_TIMEOUT_MS);
  const shot = join(screenshots, 'installed-vsix.png');
  const started = Date.now();
  const title = `the installed .vsix (${version}): Explain Diagram from the explorer streams an answer`;
  try {
    await page.goto(`${server.url}/?folder=${encodeURIComponent(folder)}`);
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'README.md' }).first().waitFor();
    const badge = await explainDiagram(page, 0);
    if (!/TTFT \d+/.test(badge)) throw new Error(`the answer's badge is "${badge}"`);
    // The model loaded for this first answer: its progress notification must have closed.
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'loading the model' }).waitFor({ state: 'detached', timeout: 10_000 });
    await page.screenshot({ path: shot });
    log(`  ✔ ${title} (${Date.now() - started} ms) -> ${shot}`);
    return { passed: 1, failed: 0 };
  } catch (e) {
    await page.screenshot({ path: shot }).catch(() => {});
    failedTitles.push(`${editorName}: ${title}: ${e.message.split('\n')[0]}`);
    log(`  ✖ ${title}: ${e.message.split('\n')[0]} -> ${shot}`);
    return { passed: 0, failed: 1 };
  } finally {
    await page.close().catch(() => {});
    await stopCodeServer(server.process);
  }
}

/** Everything in one editor: extension tests, UI tests, the installed .vsix. Returns { passed, failed }. */
async function runEditor(editor) {
  codeServerBin = editor.bin;
  editorName = editor.name;
  codeServerArgs = editor.args ?? [];
  hasChatView = editor.chatView ?? false;
  screenshots = editor.screenshots;
  freshScratch(editor.id);
  codeServerLog = '';
  ui.statusAfterFirstAnswer = '';
  const total = { passed: 0, failed: 0 };
  const add = (c) => {
    total.passed += c.passed;
    total.failed += c.failed;
  };
  try {
    const server = await startCodeServer();
    log(`${editor.name} listening at ${server.url}`);
    await launchChromium();
    for (const phase of only ? [runUiTests] : [runExtensionTests, runUiTests]) add(await phase(server));
    await stopCodeServer(server.process);
    if (!only) {
      log('packaging the extension and installing the .vsix into a fresh code-server');
      add(await runInstalledVsix());
    }
  } catch (e) {
    total.failed += 1;
    failedTitles.push(`${editor.name}: the run itself: ${String(e.message ?? e).split('\n')[0]}`);
    console.error(`[e2e ${elapsed()}] ${editor.name}: ${e.stack ?? e}`);
  } finally {
    if (total.failed > 0 && codeServerLog) {
      console.error(`--- ${editor.name} output (last 4000 characters) ---`);
      console.error(codeServerLog.slice(-4000));
      printExtensionLogs();
    }
    if (context) await context.close().catch(() => {});
    context = undefined;
    for (const cs of codeServers) await stopCodeServer(cs);
  }
  return total;
}

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`[e2e] watchdog: still running after ${WATCHDOG_MS / 1000} s; stopping`);
    void cleanup().finally(() => process.exit(1));
  }, WATCHDOG_MS);
  watchdog.unref();
  const total = { passed: 0, failed: 0 };
  const lines = [];
  try {
    log('building the extension and its tests');
    await buildAll();
    for (const editor of editors) {
      log(`=== ${editor.name} ===`);
      const c = await runEditor(editor);
      total.passed += c.passed;
      total.failed += c.failed;
      lines.push(`${editor.name}: ${c.passed} passed, ${c.failed} failed`);
      log(lines.at(-1));
    }
  } catch (e) {
    total.failed += 1;
    console.error(`[e2e ${elapsed()}] ${e.stack ?? e}`);
  } finally {
    await cleanup();
  }
  log('done');
  for (const f of failedTitles) console.log(`✖ ${f}`);
  for (const line of lines) console.log(line);
  console.log(`${total.passed} passed, ${total.failed} failed${only ? ' (partial: VLCACHE_E2E_ONLY)' : ''}`);
  process.exitCode = total.failed === 0 && total.passed > 0 && !only ? 0 : 1;
}

await main();
