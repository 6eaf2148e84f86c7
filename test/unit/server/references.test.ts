/** Image references in documents (server/src/hover/references.ts) and how their targets resolve (resolve.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findImageReferences, imageReferenceAt } from '../../../server/src/hover/references';
import { resolveReference } from '../../../server/src/hover/resolve';
import { TextDoc } from '../../../server/src/hover/text-document';
import { imageCodeLenses } from '../../../server/src/hover/code-lens';
import { workspaceRoots } from '../../../server/src/convert';

/** The reference at the first occurrence of `marker` in `text` (the cursor just after the marker's first character). */
const at = (text: string, marker: string, languageId: string) => imageReferenceAt(text, text.indexOf(marker) + 1, languageId);

describe('image references', () => {
  it('finds Markdown inline images, with <> targets, titles and percent-encoding', () => {
    const md = 'See ![the arch](docs/arch.png "Architecture") and ![x](<my shots/a b.png>) and ![y](img%20one.jpg).';
    const refs = findImageReferences(md, 'markdown');
    assert.deepEqual(refs.map((r) => [r.form, r.target]), [
      ['markdown', 'docs/arch.png'], ['markdown', 'my shots/a b.png'], ['markdown', 'img one.jpg']]);
    assert.equal(md.slice(refs[0].start, refs[0].end), '![the arch](docs/arch.png "Architecture")');
    assert.equal(at(md, 'arch]', 'markdown')?.target, 'docs/arch.png');
    assert.equal(at(md, 'See', 'markdown'), undefined);
    // On a later line of a CRLF document, and with the cursor just after the reference.
    const crlf = 'first line\r\n![a](a.png)\r\nlast';
    assert.equal(imageReferenceAt(crlf, crlf.indexOf(')') + 1, 'markdown')?.target, 'a.png');
    assert.equal(imageReferenceAt(crlf, crlf.indexOf('last'), 'markdown'), undefined);
  });

  it('resolves Markdown reference images through their definitions, case-insensitively', () => {
    const md = 'Intro ![diagram][Arch] and ![logo][] here.\n\n[arch]: ./docs/arch.png "A"\n[logo]: <logo.webp>\n[other]: notes.txt\n';
    const refs = findImageReferences(md, 'markdown');
    assert.deepEqual(refs.map((r) => [r.form, r.target]), [
      ['markdown-ref', './docs/arch.png'], ['markdown-ref', 'logo.webp'], ['markdown-def', './docs/arch.png'], ['markdown-def', 'logo.webp']]);
    assert.equal(at(md, 'diagram', 'markdown')?.form, 'markdown-ref');
    assert.equal(at(md, 'arch]:', 'markdown')?.form, 'markdown-def');
  });

  it('finds <img src> in Markdown, HTML and JSX, preferring it over the string inside it', () => {
    for (const [lang, line] of [['markdown', '<img alt="x" src="a.png">'], ['html', "<p><img src='pics/b.gif' /></p>"],
      ['typescriptreact', 'return <img className="c" src="./c.jpeg" />;']]) {
      const r = at(line, 'src', lang);
      assert.equal(r?.form, 'img', `${lang}: ${line}`);
      assert.match(r!.target, /\.(png|gif|jpeg)$/);
      assert.equal(at(line, '.', lang)?.form ?? 'img', 'img', line);
    }
  });

  it('finds string literals naming image files in code, and CSS url()', () => {
    assert.equal(at('const icon = require("./icons/app.png");', 'icons', 'javascript')?.target, './icons/app.png');
    assert.equal(at("img = Image.open('media/samples/diagram.png')", 'media', 'python')?.target, 'media/samples/diagram.png');
    assert.equal(at('const u = `assets/bg.webp`;', 'assets', 'typescript')?.target, 'assets/bg.webp');
    assert.equal(at('.hero { background: url(../img/hero.jpg) no-repeat; }', 'url', 'css')?.form, 'css-url');
    assert.equal(at('.hero { background: url("img/hero.png"); }', 'img/', 'scss')?.target, 'img/hero.png');
  });

  it('ignores other files, web URLs, formats we do not decode, and Markdown syntax outside Markdown', () => {
    assert.deepEqual(findImageReferences('"notes.txt" "https://x.org/a.png" "data:image/png;base64,AA" "icon.svg" "pic.bmp"', 'typescript'), []);
    assert.deepEqual(findImageReferences('// ![x](a.png)', 'typescript'), []);
    assert.deepEqual(findImageReferences('"a.png?v=2#top"', 'typescript').map((r) => r.target), ['a.png?v=2#top']);
  });
});

describe('resolveReference', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vlcache-refs-'));
  const ws = join(tmp, 'ws');
  mkdirSync(join(ws, 'docs', 'img'), { recursive: true });
  mkdirSync(join(ws, 'media'), { recursive: true });
  for (const f of ['docs/img/a.png', 'media/b.png', 'top.png']) writeFileSync(join(ws, f), 'x');
  writeFileSync(join(tmp, 'secret.png'), 'x');
  symlinkSync(join(tmp, 'secret.png'), join(ws, 'docs', 'link.png'));
  const roots = workspaceRoots([ws]);
  const doc = pathToFileURL(join(ws, 'docs', 'README.md')).href;

  it('resolves relative to the document folder, then to the workspace folder', () => {
    assert.equal(resolveReference('img/a.png', doc, roots), join(roots[0], 'docs', 'img', 'a.png'));
    assert.equal(resolveReference('./img/a.png?raw', doc, roots), join(roots[0], 'docs', 'img', 'a.png'));
    assert.equal(resolveReference('media/b.png', doc, roots), join(roots[0], 'media', 'b.png'));
    assert.equal(resolveReference('../top.png', doc, roots), join(roots[0], 'top.png'));
  });

  it('resolves "/x.png" against the workspace folder, and absolute paths and file URIs as themselves', () => {
    assert.equal(resolveReference('/media/b.png', doc, roots), join(roots[0], 'media', 'b.png'));
    assert.equal(resolveReference(join(ws, 'top.png'), doc, roots), join(roots[0], 'top.png'));
    assert.equal(resolveReference(pathToFileURL(join(ws, 'top.png')).href, doc, roots), join(roots[0], 'top.png'));
  });

  it('refuses files outside the workspace (by .., absolute path or link) and missing files', () => {
    for (const t of ['../../secret.png', join(tmp, 'secret.png'), 'link.png', 'img/missing.png', 'img', 'https://x.org/a.png']) {
      assert.equal(resolveReference(t, doc, roots), undefined, t);
    }
  });
});

describe('TextDoc', () => {
  it('applies incremental changes and maps positions and offsets across \\n and \\r\\n lines', () => {
    let d = new TextDoc('file:///x.md', 'markdown', 1, 'one\r\ntwo\nthree');
    assert.deepEqual(d.positionAt(d.getText().indexOf('two')), { line: 1, character: 0 });
    assert.equal(d.offsetAt({ line: 2, character: 2 }), d.getText().indexOf('ree'));
    assert.equal(d.offsetAt({ line: 0, character: 99 }), 3); // clamped to the line's end
    d = d.update([{ range: { start: { line: 1, character: 0 }, end: { line: 1, character: 3 } }, text: '![a](a.png)' },
      { range: { start: { line: 0, character: 3 }, end: { line: 0, character: 3 } }, text: '!' }], 2);
    assert.equal(d.getText(), 'one!\r\n![a](a.png)\nthree');
    assert.equal(d.version, 2);
    assert.equal(d.update([{ text: 'new' }], 3).getText(), 'new');
  });
});

describe('image reference scanning on hostile lines', () => {
  // Each unit repeated to a 1 MB line. Before the scanner was linear, a 200 KB line of "![" took
  // 17-24 s and 1 MB took many minutes (quadratic); linear scanning takes tens of milliseconds.
  // The 2 s bound per line is a generous guard against the quadratic, not a benchmark.
  const units = ['![', '![a](', '![a](<', '![a](x "', '![a](x (', '![a][', '![[a]', '[', '![a]![a]', '<img ', '<img src="',
    "<img src='", '<img src=x ', 'url(', 'url("', "url('", 'url(x', '"\\', "'\\", '`\\', '"\\"', 'a.png"', ' ', '((((', ')'];
  const MB = 1 << 20;
  const tail = ' ![t](tail.png) <img src="tail.gif"> url(tail.jpg) "tail.webp"';

  for (const lang of ['markdown', 'typescript']) {
    it(`finds the references after a 1 MB hostile run in linear time (${lang})`, () => {
      const doc = (unit: string) => unit.repeat(Math.ceil(MB / unit.length)) + tail;
      for (const unit of units) {
        const text = doc(unit);
        const t0 = performance.now();
        const refs = findImageReferences(text, lang);
        const mid = imageReferenceAt(text, text.length >> 1, lang);
        const lenses = imageCodeLenses(new TextDoc(pathToFileURL(join(tmpdir(), 'x.md')).href, lang, 1, text), []);
        const ms = performance.now() - t0;
        assert.ok(ms < 2000, `${JSON.stringify(unit)} x 1 MB in ${lang} took ${ms.toFixed(0)} ms`);
        assert.equal(lenses.length, 0); // No workspace folder: nothing resolves.
        assert.equal(mid === undefined || mid.target.length < 8, true);
        const targets = refs.filter((r) => r.start > text.length - tail.length).map((r) => r.target);
        // An unclosed quote in the run legitimately pairs with the tail's first quote.
        const expected = ['tail.gif', 'tail.jpg', ...(lang === 'markdown' ? ['tail.png'] : []),
          ...(/["'`\\]/.test(unit) ? [] : ['tail.webp'])];
        for (const t of expected) {
          assert.ok(targets.includes(t), `${JSON.stringify(unit)}: ${t} after the run is still found (${targets})`);
        }
      }
    });
  }
});
