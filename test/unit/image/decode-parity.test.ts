/**
 * Every decoder against Pillow: fixtures/decode holds files in each variant users send (JPEG
 * subsampling, progressive, grey, CMYK, ICC, EXIF; PNG of every colour type and bit depth with and
 * without tRNS; GIF; WebP lossy, lossless, alpha, animated) and Pillow's convert("RGB") and
 * convert("RGBA") of each (make-decode-fixtures.py). Decoding must be bit-identical, both with the
 * calling thread's decoder and through the image worker pool.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { PNG } from 'pngjs';

import { decodeImage, type DecodedImage } from '../../../server/src/engine/image/decode';
import { ImageWorkerPool } from '../../../server/src/engine/image/isolate';
import { compositeOverWhite, dropAlpha } from '../../../server/src/engine/image/rgb';
import { firstDifference } from './fixtures';

const DIR = join(__dirname, 'fixtures', 'decode');
const manifest: { pillow: string; cases: { file: string; mode: string; width: number; height: number }[] } =
  JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8'));

/** Pillow's pixels: the .rgb.png / .rgba.png written by make-decode-fixtures.py, read with pngjs. */
function pillow(file: string, channels: 3 | 4): Uint8Array {
  const png = PNG.sync.read(readFileSync(join(DIR, `${file}.${channels === 3 ? 'rgb' : 'rgba'}.png`)));
  if (channels === 4) return new Uint8Array(png.data);
  const out = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; j < out.length; i += 4, j += 3) out.set(png.data.subarray(i, i + 3), j);
  return out;
}

function assertSame(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), `${what}: ${firstDifference(actual, expected)}`);
}

/** Our decode equals Pillow's convert("RGB"), and convert("RGBA") when we keep alpha (else Pillow's alpha is all 255). */
function assertPillowExact(image: DecodedImage, c: (typeof manifest.cases)[number]): void {
  assert.deepEqual([image.width, image.height], [c.width, c.height]);
  assertSame(image.channels === 3 ? image.data : dropAlpha(image).data, pillow(c.file, 3), 'convert("RGB")');
  const rgba = pillow(c.file, 4);
  if (image.channels === 4) {
    assertSame(image.data, rgba, 'convert("RGBA")');
  } else {
    for (let i = 3; i < rgba.length; i += 4) assert.equal(rgba[i], 255, `Pillow has alpha ${rgba[i]} at pixel ${(i - 3) / 4}, we dropped it`);
  }
}

describe(`decoding is bit-identical to Pillow ${manifest.pillow}`, () => {
  it('covers every format and the JPEG and PNG variants', () => {
    const files = manifest.cases.map((c) => c.file);
    for (const prefix of ['jpeg-420', 'jpeg-422', 'jpeg-444', 'jpeg-420-progressive', 'jpeg-grey', 'jpeg-cmyk', 'png-grey1',
      'png-grey16', 'png-greyalpha16', 'png-rgb16', 'png-rgba16', 'png-palette8-trns', 'gif-transparent', 'webp-lossy.',
      'webp-lossless.', 'webp-lossy-alpha', 'webp-animated']) {
      assert.ok(files.some((f) => f.startsWith(prefix)), `no fixture ${prefix}*`);
    }
  });

  for (const c of manifest.cases) {
    it(`${c.file} (Pillow mode ${c.mode})`, async () => {
      assertPillowExact(await decodeImage(new Uint8Array(readFileSync(join(DIR, c.file))), { name: c.file }), c);
    });
  }

  it('gives an RGBA file whose alpha is 255 everywhere as RGB, equal to dropping and to compositing alpha', async () => {
    const png = new PNG({ width: 9, height: 5 });
    for (let i = 0; i < png.data.length; i++) png.data[i] = i % 4 === 3 ? 255 : (i * 37) % 256;
    const image = await decodeImage(new Uint8Array(PNG.sync.write(png, { colorType: 6 })));
    assert.equal(image.channels, 3);
    const rgba = { width: 9, height: 5, data: new Uint8Array(png.data) };
    assertSame(image.data, dropAlpha(rgba).data, 'drop');
    assertSame(image.data, compositeOverWhite(rgba).data, 'over white');
    png.data[7] = 254; // one pixel not quite opaque: alpha is kept
    assert.equal((await decodeImage(new Uint8Array(PNG.sync.write(png, { colorType: 6 })))).channels, 4);
  });

  describe('through the image worker pool', () => {
    const pool = new ImageWorkerPool({ timeoutMs: 20_000, maxHeapMb: 256, workers: 2 });
    after(() => pool.close());
    it('gives the same pixels for every fixture', async () => {
      await Promise.all(manifest.cases.map(async (c) => {
        assertPillowExact(await pool.decode(new Uint8Array(readFileSync(join(DIR, c.file))), { name: c.file }), c);
      }));
    });
  });
});
