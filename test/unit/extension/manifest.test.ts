/**
 * package.json's walkthrough and packaging fields point at things that exist: every command a walkthrough button
 * or completion event names is contributed (and registered by the extension's sources), every step's media file
 * is in media/, and the files plain `vsce package` reads (the Marketplace README, the licence, the changelog).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../support/server-fixture';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
const contributed = new Set<string>(pkg.contributes.commands.map((c: { command: string }) => c.command));
const extensionSources = readdirSync(join(repoRoot, 'extension', 'src')).map((f) => readFileSync(join(repoRoot, 'extension', 'src', f), 'utf8')).join('\n');

interface Step { id: string; description: string; media: { markdown?: string; image?: string }; completionEvents?: string[] }

describe('the Getting Started walkthrough', () => {
  const steps: Step[] = pkg.contributes.walkthroughs[0].steps;

  it('has the three steps: a model, CUDA, a question', () => {
    assert.deepEqual(steps.map((s) => s.id), ['chooseModel', 'enableCuda', 'askAboutImage']);
    assert.match(steps[1].description, /NVIDIA GPU/);
  });

  it('runs only contributed, registered commands, and completes on them', () => {
    for (const s of steps) {
      const buttons = [...s.description.matchAll(/\(command:([\w.]+)\)/g)].map((m) => m[1]);
      assert.ok(buttons.length > 0, `${s.id} has no button`);
      const events = (s.completionEvents ?? []).filter((e) => e.startsWith('onCommand:')).map((e) => e.slice('onCommand:'.length));
      assert.ok(events.length > 0, `${s.id} has no onCommand completion event`);
      for (const c of [...buttons, ...events]) {
        assert.ok(contributed.has(c), `${s.id}: ${c} is not contributed`);
        assert.ok(extensionSources.includes(`'${c}'`), `${s.id}: ${c} is registered nowhere in extension/src`);
      }
    }
    assert.deepEqual(steps.map((s) => s.description.match(/\(command:([\w.]+)\)/g)), [
      ['(command:vlcache.downloadModel)', '(command:vlcache.selectModel)'],
      ['(command:vlcache.installCudaProvider)'],
      ['(command:vlcache.askAboutImage)', '(command:vlcache.openSampleDiagram)'],
    ]);
  });

  it('shows a markdown file of media/walkthrough/ for each step, whose images exist', () => {
    for (const s of steps) {
      const md = s.media.markdown!;
      assert.match(md, /^media\/walkthrough\/[\w-]+\.md$/);
      const text = readFileSync(join(repoRoot, md), 'utf8');
      for (const [, rel] of text.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)) {
        assert.ok(existsSync(join(repoRoot, 'media', 'walkthrough', rel)), `${md} shows ${rel}, which is missing`);
      }
    }
  });
});

describe('packaging fields', () => {
  it('names a repository, a licence file, the categories and a short Marketplace README', () => {
    assert.equal(pkg.repository.url, 'https://github.com/vlcache/vlcache-vscode');
    assert.ok(existsSync(join(repoRoot, 'LICENSE')) && existsSync(join(repoRoot, 'CHANGELOG.md')));
    for (const c of ['AI', 'Chat', 'Machine Learning']) assert.ok(pkg.categories.includes(c), c);
    const readme = readFileSync(join(repoRoot, pkg.vsce.readmePath), 'utf8');
    assert.ok(readme.length < 6000, `the Marketplace README is ${readme.length} characters`);
    assert.doesNotMatch(readme, /\]\((?!https:|#)[^)]*\)/, 'a relative link (vsce would rewrite it against the repository)');
    assert.equal(pkg.vsce.ignoreFile, 'dist/.vscodeignore');
    assert.match(pkg.scripts['vscode:prepublish'], /scripts\/vscodeignore\.mjs/);
  });
});
