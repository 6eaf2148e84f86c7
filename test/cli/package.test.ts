// `npm run package` (scripts/package.mjs): the .vsix holds the bundled extension and
// daemon, the built-in model and webview assets, and onnxruntime-node's binaries for
// this platform only; unpacked far from this checkout (no node_modules above it),
// its daemon answers a question on the built-in model.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';

const root = join(__dirname, '..', '..');
const target = `${process.platform}-${process.arch}`;

describe('npm run package', () => {
  let dir: string;
  let files: string[];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vlcache-vsix-'));
    const vsix = join(dir, 'vlcache.vsix');
    execFileSync(process.execPath, ['scripts/package.mjs', '--out', vsix], { cwd: root, stdio: 'pipe' });
    // A .vsix is a zip; Python's zipfile unpacks it (no unzip on a bare machine).
    execFileSync('python3', ['-m', 'zipfile', '-e', vsix, join(dir, 'unpacked')]);
    files = execFileSync('python3', ['-c', 'import sys,zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', vsix], { encoding: 'utf8' })
      .split('\n').filter(Boolean);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('contains the bundles, the manifest, the built-in model and the webview assets', () => {
    for (const f of ['extension/package.json', 'extension/dist/extension.js', 'extension/dist/cli.js', 'extension/media/model/model.safetensors',
      'extension/media/model/tokenizer.json', 'extension/media/webview/answer.js', 'extension/media/icon.png', 'extension/readme.md', 'extension/license']) {
      // vsce lower-cases README and LICENSE (and may add .txt).
      assert.ok(files.some((g) => g.toLowerCase() === f || g.toLowerCase() === `${f}.txt`), `${f} is missing from the .vsix`);
    }
    assert.ok(files.includes('extension.vsixmanifest'));
  });

  it("ships onnxruntime-node's binaries for this platform only", () => {
    const natives = files.filter((f) => f.includes('onnxruntime-node/bin/'));
    assert.ok(natives.some((f) => f.endsWith(`napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node`)), natives.join('\n'));
    const others = natives.filter((f) => !f.includes(`napi-v6/${process.platform}/${process.arch}/`));
    assert.deepEqual(others, [], `binaries of other platforms: ${others.join(', ')}`);
    assert.ok(!files.some((f) => f.startsWith('extension/node_modules/')), 'a top-level node_modules was packaged');
  });

  it(`declares its target platform (${target}) and no development scripts`, () => {
    const manifest = JSON.parse(execFileSync('python3', ['-c', 'import sys; print(open(sys.argv[1]).read())', join(dir, 'unpacked', 'extension', 'package.json')], { encoding: 'utf8' }));
    assert.equal(manifest.main, './dist/extension.js');
    assert.equal(manifest.scripts, undefined);
    assert.equal(manifest.devDependencies, undefined);
    const vsixManifest = execFileSync('python3', ['-c', 'import sys; print(open(sys.argv[1]).read())', join(dir, 'unpacked', 'extension.vsixmanifest')], { encoding: 'utf8' });
    assert.match(vsixManifest, new RegExp(`TargetPlatform="${target}"`));
  });

  it('its daemon, unpacked away from this checkout, answers on the built-in model', () => {
    const ext = join(dir, 'unpacked', 'extension');
    assert.ok(existsSync(join(ext, 'dist', 'cli.js')));
    const r = spawnSync(process.execPath, [join(ext, 'dist', 'cli.js'), 'ask', '--image', join(ext, 'media', 'samples', 'diagram.png'),
      '--max-tokens', '4', '--no-cache', '--json', 'What is this?'], { cwd: dir, encoding: 'utf8', env: { ...process.env, NODE_PATH: '' } });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.ok(out.token_ids.length >= 1 && out.token_ids.length <= 4, r.stdout.slice(0, 500));
  });
});
