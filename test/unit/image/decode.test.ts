import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';

import { decodeImage } from '../../../server/src/engine/image/decode';
import { ImageError, type ImageErrorCode } from '../../../server/src/engine/image/errors';
import { compositeOverWhite, dropAlpha } from '../../../server/src/engine/image/rgb';
import { fixtureBytes, fixtureRgb, firstDifference, manifest } from './fixtures';

/** A PNG signature and IHDR chunk (valid CRC) declaring `width` x `height`, 8-bit RGB, then IEND. */
function pngHeader(width: number, height: number): Uint8Array {
  const chunk = (type: string, payload: Uint8Array): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), payload]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(payload.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return new Uint8Array(Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IEND', new Uint8Array(0))]));
}

async function rejects(bytes: Uint8Array, code: ImageErrorCode, name = 'docs/x.png', maxPixels?: number): Promise<ImageError> {
  let caught: unknown;
  try {
    await decodeImage(bytes, { name, maxPixels });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ImageError, `expected an ImageError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.startsWith(name), `the message names the image: ${caught.message}`);
  return caught;
}

describe('decodeImage', () => {
  it('has Pillow reference files for every format', async () => {
    const formats = new Set(manifest.decode.map((c) => c.file.split('.').pop()));
    assert.deepEqual([...formats].sort(), ['gif', 'png', 'webp']);
  });

  for (const c of manifest.decode) {
    it(`gives the pixels Pillow gives for ${c.file} (convert("RGB")${c.white ? ' and over white' : ''})`, async () => {
      const image = await decodeImage(fixtureBytes(c.file), { name: c.file });
      const expected = fixtureRgb(c.drop);
      assert.equal(image.width, expected.width);
      assert.equal(image.height, expected.height);
      const drop = image.channels === 3 ? image.data : dropAlpha(image).data;
      assert.ok(Buffer.from(drop).equals(Buffer.from(expected.data)), firstDifference(drop, expected.data));
      if (c.white !== undefined) {
        const white = image.channels === 3 ? image.data : compositeOverWhite(image).data;
        const expectedWhite = fixtureRgb(c.white).data;
        assert.ok(Buffer.from(white).equals(Buffer.from(expectedWhite)), firstDifference(white, expectedWhite));
      }
    });
  }

  it('maps 16-bit RGB to the high byte and clips 16-bit grey at 255, as Pillow does', async () => {
    // make-fixtures.py put 0x80ff, 0x00ff, 0xff00 in the first RGB pixel and 0, 255, 256 in the first grey pixels.
    const rgb = await decodeImage(fixtureBytes('rgb16.png'));
    assert.deepEqual([...rgb.data.subarray(0, 3)], [0x80, 0x00, 0xff]);
    const grey = await decodeImage(fixtureBytes('gray16.png'));
    const k = grey.channels;
    assert.deepEqual([grey.data[0], grey.data[k], grey.data[2 * k]], [0, 255, 255]);
  });

  it('detects the format from the bytes, not the file name', async () => {
    assert.equal((await decodeImage(fixtureBytes('rgba.png'), { name: 'photo.jpg' })).format, 'png');
    assert.equal((await decodeImage(fixtureBytes('lossy.webp'), { name: 'image.png' })).format, 'webp');
  });

  it('rejects HTML with a message that quotes the first bytes and lists the formats', async () => {
    const e = await rejects(new TextEncoder().encode('<html><body>404</body></html>'), 'not-an-image');
    assert.equal(e.message, "docs/x.png is not an image (starts with '<htm'); expected PNG, JPEG, WebP or GIF.");
  });

  it('points at git lfs when the file is an LFS pointer', async () => {
    const pointer = new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n');
    assert.match((await rejects(pointer, 'not-an-image')).message, /git lfs pull/);
  });

  it('names known but unsupported formats', async () => {
    const bmp = new Uint8Array([0x42, 0x4d, 0x3a, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0]);
    assert.match((await rejects(bmp, 'unsupported-format')).message, /is a BMP image, which is not supported; convert it to PNG/);
  });

  it('rejects an empty file', async () => {
    await rejects(new Uint8Array(0), 'empty');
  });

  it('rejects a truncated PNG as corrupt', async () => {
    const png = fixtureBytes('rgba.png');
    await rejects(png.subarray(0, Math.floor(png.length / 2)), 'corrupt');
    await rejects(png.subarray(0, 20), 'corrupt'); // Cut inside IHDR.
  });

  it('rejects truncated GIF and WebP files as corrupt', async () => {
    const gif = fixtureBytes('transparent.gif');
    await rejects(gif.subarray(0, 30), 'corrupt', 'a.gif');
    const webp = fixtureBytes('alpha-lossless.webp');
    await rejects(webp.subarray(0, 60), 'corrupt', 'a.webp');
  });

  it('rejects a PNG whose header declares zero width', async () => {
    await rejects(pngHeader(0, 10), 'empty');
  });

  it('refuses a PNG declaring 100000 x 100000 pixels before decoding anything', async () => {
    // The file is 45 bytes: decoding would fail anyway, so 'too-large' proves the guard ran first.
    const e = await rejects(pngHeader(100_000, 100_000), 'too-large');
    assert.match(e.message, /100000x100000/);
  });

  it('applies a caller-given pixel limit', async () => {
    // rgba.png is 9 x 6 = 54 pixels.
    await rejects(fixtureBytes('rgba.png'), 'too-large', 'docs/x.png', 50);
    assert.equal((await decodeImage(fixtureBytes('rgba.png'), { maxPixels: 54 })).width, 9);
  });
});
