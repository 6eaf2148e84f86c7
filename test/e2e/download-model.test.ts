/// <reference types="mocha" />
// "VLCache: Download Model…" end to end, inside VS Code's extension host: a real hub on
// 127.0.0.1 (test/unit/models/local-hub.ts: the Hugging Face URL layout, a 302 to a "CDN"
// port for the weights, a log of every request with its Range header and the bytes sent)
// serves the built-in model's files as `Qwen/Tiny-VL`. The extension is pointed at it the
// way a user would, with the `vlcache.model.hubEndpoint` setting, and the command runs with
// its public arguments ({repo, dest, quiet}) instead of its quick picks. The daemon is the
// real one and downloads; then it is restarted on the downloaded folder and answers.
//
// Runs before extension.test.ts (files run in name order), so it leaves what it found: the
// settings unset, the workspace cache empty and the daemon stopped.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { VlcacheApi } from '../../extension/src/main';
import type { DownloadModelResult } from '../../server/src/protocol/download-model';
import { startLocalHub, type LocalHub } from '../unit/models/local-hub';

const extensionId = 'vlcache.vlcache';
const REPO = 'Qwen/Tiny-VL';
const WEIGHTS = 'model.safetensors';
/** Where the CDN drops the first transfer of the weights (13 MB in all). */
const CUT = 5_000_000;

async function api(): Promise<VlcacheApi> {
  const extension = vscode.extensions.getExtension<VlcacheApi>(extensionId);
  assert.ok(extension, `${extensionId} is not loaded`);
  return extension.activate();
}

const config = () => vscode.workspace.getConfiguration('vlcache');
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Runs the command as a walkthrough link or another extension would; the promise rejects with the shown error. */
async function downloadModel(dest: string): Promise<DownloadModelResult | undefined> {
  return vscode.commands.executeCommand<DownloadModelResult | undefined>('vlcache.downloadModel', { repo: REPO, dest, quiet: true });
}

describe('Download Model… from a hub on 127.0.0.1', function () {
  this.timeout(120_000);
  let hub: LocalHub;
  let source: string; // the files the hub serves: the built-in model
  let tmp: string;
  /** The CDN's requests for the weights (the hub's own answers them with a 302). */
  const weightRequests = () => hub.log.filter((r) => r.server === 'cdn' && r.path === `/${WEIGHTS}`);

  before(async () => {
    source = join(vscode.extensions.getExtension(extensionId)!.extensionPath, 'media', 'model');
    hub = await startLocalHub(REPO, source);
    tmp = mkdtempSync(join(tmpdir(), 'vlcache-e2e-download-'));
    assert.equal(config().get('modelPath'), '', 'the model setting is not the default at the start');
    await config().update('model.hubEndpoint', hub.endpoint, vscode.ConfigurationTarget.Global);
  });

  after(async () => {
    const a = await api();
    if (a.daemon.currentState === 'running') await a.daemon.clearCache(); // the next tests expect a cold cache
    await config().update('modelPath', undefined, vscode.ConfigurationTarget.Global);
    await config().update('model.hubEndpoint', undefined, vscode.ConfigurationTarget.Global);
    await a.daemon.stop();
    await hub?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('weights that do not match the hub\'s sha256 are not kept, and the error says so', async () => {
    hub.listedSha.set(WEIGHTS, 'ab'.repeat(32));
    try {
      const dest = join(tmp, 'mismatch');
      await assert.rejects(downloadModel(dest), (e: Error) => {
        assert.match(e.message, /^Qwen\/Tiny-VL was not downloaded: checksum mismatch: .* \(sha256 differs\); model\.safetensors was not kept; download again/);
        return true;
      });
      assert.ok(weightRequests().length >= 1, 'the weights were fetched from the hub set in vlcache.model.hubEndpoint');
      const dir = join(dest, 'Tiny-VL');
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith(WEIGHTS)), [], 'no weights, .part or .part.json left');
      assert.equal(config().get('modelPath'), '', 'the model setting was changed');
    } finally {
      hub.listedSha.delete(WEIGHTS);
    }
  });

  it('a transfer cut by the server is resumed by the next run with a Range request; the folder is checked, set and answers', async () => {
    const a = await api();
    const dest = join(tmp, 'models');
    const dir = join(dest, 'Tiny-VL');
    const size = statSync(join(source, WEIGHTS)).size;
    hub.log.length = 0;

    // 1. The CDN sends CUT bytes, drops the connection and stays down: the run's own retries fail too.
    hub.outageAfter = CUT;
    await assert.rejects(downloadModel(dest), (e: Error) => {
      assert.match(e.message, /^Qwen\/Tiny-VL was not downloaded: the download of \S+ was interrupted \(.+\); run the download again to resume it$/);
      return true;
    });
    // The server hands CUT bytes to the socket and resets it: the reset can discard a few KB not yet read, so the .part
    // holds what arrived (at most CUT), and the resumed run must start exactly there.
    const got = statSync(join(dir, `${WEIGHTS}.part`)).size;
    assert.ok(got > 0 && got <= CUT, `the .part file keeps what arrived (${got} of ${CUT} bytes sent)`);
    assert.ok(!existsSync(join(dir, WEIGHTS)), 'unchecked weights are in place');
    assert.equal(config().get('modelPath'), '', 'the model setting was changed by a failed download');
    const first = weightRequests();
    assert.equal(first[0].range, undefined);
    assert.equal(first[0].sent, CUT);
    assert.ok(first.length > 1 && first.slice(1).every((r) => r.range === `bytes=${got}-` && r.sent === 0), 'the run retried, resuming, while the CDN was down');

    // 2. The network is back: the next run asks only for the rest.
    hub.down = false;
    hub.log.length = 0;
    const r = await downloadModel(dest);
    assert.ok(r, 'the download was cancelled');
    const second = weightRequests();
    assert.equal(second.length, 1, `weight requests: ${JSON.stringify(second)}`);
    assert.equal(second[0].range, `bytes=${got}-`, 'the second run did not resume');
    assert.equal(second[0].sent, size - got, 'bytes that had arrived were sent again');
    assert.equal(r.totalBytes - r.fetchedBytes, got, 'the result counts the resumed bytes as not fetched');

    // 3. Checked and in place: exactly the served files, the weights' sha256 the hub's, no .part left.
    assert.equal(r.dir, dir);
    assert.equal(r.commit, hub.commit);
    assert.equal(r.modelType, 'qwen2_vl');
    assert.deepEqual(readdirSync(dir).sort(), readdirSync(source).sort());
    assert.equal(sha256(join(dir, WEIGHTS)), sha256(join(source, WEIGHTS)));
    assert.equal(config().inspect<string>('modelPath')?.globalValue, dir, 'vlcache.modelPath does not point at the download');

    // 4. The daemon loads the downloaded folder and answers a question about an image.
    assert.equal(await vscode.commands.executeCommand('vlcache.restartDaemon'), 'running');
    const diagram = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0].uri, 'docs', 'diagram.png');
    const answer = await a.daemon.ask({ images: [diagram.toString()], question: 'How many boxes are there?' }, () => {});
    // The built-in model's weights, so the built-in model's answer: the fixture diagram has 4 boxes.
    assert.match(answer.text.trim(), /^\d{1,2}$/, `the answer is "${answer.text}"`);
    const stats = await a.daemon.stats();
    assert.equal(stats.model.path, dir, 'the daemon answered with another model');
    assert.equal(stats.model.state, 'ready');
  });
});
