/// <reference types="mocha" />
// Extension tests, run inside VS Code's extension host: offline in code-server by
// test/e2e/run.mjs, and in desktop VS Code by @vscode/test-cli (.vscode-test.mjs).
// Both load the compiled copy, out/test/e2e/extension.test.js.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

const extensionId = 'vlcache.vlcache';

describe('Extension', () => {
  it('activates and returns the package version from activate()', async () => {
    const extension = vscode.extensions.getExtension<{ version: string }>(extensionId);
    assert.ok(extension, `${extensionId} is not loaded`);
    const api = await extension.activate();
    assert.equal(extension.isActive, true);
    assert.equal(api.version, extension.packageJSON.version);
    assert.match(api.version, /^\d+\.\d+\.\d+/);
  });

  it('registers vlcache.showVersion, and the command runs', async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('vlcache.showVersion'), 'vlcache.showVersion is not registered');
    // The command shows a notification and resolves; it must not throw.
    await vscode.commands.executeCommand('vlcache.showVersion');
  });

  it('opens the fixture workspace', () => {
    const folders = vscode.workspace.workspaceFolders ?? [];
    assert.equal(folders.length, 1);
    assert.match(folders[0].uri.path, /test\/fixtures\/workspace$/);
  });
});
