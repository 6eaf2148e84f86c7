/** Error text with workspace-relative paths, and the leading-bytes check that keeps non-images out of the answer view. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { imageFormatOf, relativePaths } from '../../../extension/src/error-text';

const toRelative = (folders: string[]) => (uri: string) => {
  const p = fileURLToPath(uri);
  const f = folders.find((x) => p.startsWith(`${x}/`));
  return f ? p.slice(f.length + 1) : p;
};

describe('relativePaths', () => {
  it('writes file URIs and absolute paths in a workspace folder relative to it; others stay', () => {
    const folders = ['/home/u/proj', '/home/u/proj/sub'];
    assert.equal(relativePaths('no such image file: file:///home/u/proj/docs/a%20b.png.', folders, toRelative(folders)), 'no such image file: docs/a b.png.');
    assert.equal(relativePaths('/home/u/proj/sub/x.png is not an image', folders, toRelative(folders)), 'x.png is not an image');
    assert.equal(relativePaths('outside: /etc/hostname.png', folders, toRelative(folders)), 'outside: /etc/hostname.png');
  });
});

describe('imageFormatOf', () => {
  it('knows PNG, JPEG, GIF and WebP by their first bytes, and nothing else', () => {
    assert.equal(imageFormatOf(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])), 'png');
    assert.equal(imageFormatOf(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])), 'jpeg');
    assert.equal(imageFormatOf(Buffer.from('GIF89a')), 'gif');
    assert.equal(imageFormatOf(Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8 ', 'latin1')), 'webp');
    assert.equal(imageFormatOf(Buffer.from('RIFF\x10\x00\x00\x00WAVEfmt ', 'latin1')), undefined);
    assert.equal(imageFormatOf(Buffer.from('This is not a PNG')), undefined);
    assert.equal(imageFormatOf(new Uint8Array(0)), undefined);
  });
});
