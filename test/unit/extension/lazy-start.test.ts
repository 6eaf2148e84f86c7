/** Which open documents start the daemon (lazy start): only hover languages that name an image file. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOVER_LANGUAGES, needsDaemon } from '../../../extension/src/lazy-start';

describe('lazy start', () => {
  it('a Python file without image paths needs no daemon; one naming a .png does', () => {
    assert.equal(needsDaemon('python', 'print("hello")\n'), false);
    assert.equal(needsDaemon('python', 'img = open("docs/diagram.PNG")\n'), true);
    assert.equal(needsDaemon('markdown', '![chart](chart.webp)'), true);
  });
  it('a language the daemon does not hover never starts it, image names or not', () => {
    assert.equal(needsDaemon('plaintext', 'diagram.png'), false);
    assert.equal(needsDaemon('rust', 'include_bytes!("logo.png")'), false);
  });
  it('the manifest activates on exactly the hover languages, and not at start-up', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { activationEvents: string[] };
    const langs = pkg.activationEvents.filter((e) => e.startsWith('onLanguage:')).map((e) => e.slice('onLanguage:'.length));
    assert.deepEqual(langs, [...HOVER_LANGUAGES]);
    assert.ok(!pkg.activationEvents.includes('onStartupFinished') && !pkg.activationEvents.includes('*'));
    assert.ok(pkg.activationEvents.includes('onCustomEditor:imagePreview.previewEditor'), 'opening an image activates');
  });
});
