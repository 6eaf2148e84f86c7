import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ResponseError } from 'vscode-languageserver-protocol';
import { resolveImagePath, workspaceRoots } from '../../../server/src/convert';
import { ErrorCodes } from '../../../server/src/protocol/errors';

describe('resolveImagePath', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vlcache-convert-'));
  const ws = join(tmp, 'ws');
  mkdirSync(join(ws, 'docs'), { recursive: true });
  writeFileSync(join(ws, 'docs', 'a.png'), 'x');
  writeFileSync(join(tmp, 'secret.png'), 'x');
  symlinkSync(join(tmp, 'secret.png'), join(ws, 'link.png'));
  const roots = workspaceRoots([pathToFileURL(ws).href]);
  const refused = (ref: string) => (e: unknown) => {
    assert.ok(e instanceof ResponseError, `${ref}: ${String(e)}`);
    assert.equal(e.code, ErrorCodes.PathOutsideWorkspace);
    assert.equal((e.data as { path: string }).path, ref);
    return true;
  };

  it('resolves workspace-relative paths, absolute paths and file URIs inside a folder', () => {
    const want = join(roots[0], 'docs', 'a.png');
    assert.equal(resolveImagePath('docs/a.png', roots), want);
    assert.equal(resolveImagePath(join(ws, 'docs', 'a.png'), roots), want);
    assert.equal(resolveImagePath(pathToFileURL(join(ws, 'docs', 'a.png')).href, roots), want);
  });

  it('refuses paths that leave the workspace, by .., absolute path, URI or symbolic link', () => {
    for (const ref of ['../secret.png', 'docs/../../secret.png', join(tmp, 'secret.png'), pathToFileURL(join(tmp, 'secret.png')).href, 'link.png']) {
      assert.throws(() => resolveImagePath(ref, roots), refused(ref));
    }
  });

  it('refuses non-file URIs and any path when no folder is open', () => {
    assert.throws(() => resolveImagePath('https://example.com/a.png', roots), refused('https://example.com/a.png'));
    assert.throws(() => resolveImagePath('docs/a.png', []), refused('docs/a.png'));
  });
});
