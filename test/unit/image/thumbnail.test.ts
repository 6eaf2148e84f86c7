/** Hover thumbnails are made in the image worker pool (hover/thumbnail.ts) and fail cleanly on bad files. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { PNG } from 'pngjs';

import { ImageError } from '../../../server/src/engine/image/errors';
import { makeThumbnail, THUMBNAIL_SIDE } from '../../../server/src/hover/thumbnail';

const fixture = (name: string) => new Uint8Array(readFileSync(join(__dirname, 'fixtures', name)));

describe('makeThumbnail', () => {
  it('gives a PNG data URI at most THUMBNAIL_SIDE px on the long side, with the image size', async () => {
    const t = await makeThumbnail(fixture('pipeline-12x1500.png'), 'docs/tall.png');
    assert.deepEqual([t.width, t.height], [12, 1500]);
    const png = PNG.sync.read(Buffer.from(t.dataUri.replace(/^data:image\/png;base64,/, ''), 'base64'));
    assert.equal(Math.max(png.width, png.height), THUMBNAIL_SIDE);
  });

  it('never enlarges, and composites transparency over white', async () => {
    const t = await makeThumbnail(fixture('rgba.png'), 'rgba.png');
    const png = PNG.sync.read(Buffer.from(t.dataUri.split(',')[1]!, 'base64'));
    assert.deepEqual([png.width, png.height], [9, 6]);
    assert.deepEqual([...png.data.subarray(0, 4)], [255, 255, 255, 255]); // rgba.png's first pixel is fully transparent
  });

  it('refuses a decompression bomb and a damaged file with an ImageError naming it', async () => {
    const u16 = (v: number) => [v & 0xff, v >> 8];
    const bomb = new Uint8Array([...Buffer.from('GIF89a'), ...u16(1), ...u16(1), 0x80, 0, 0, 0, 0, 0, 255, 255, 255,
      0x2c, 0, 0, 0, 0, ...u16(65535), ...u16(65535), 0, 2, 2, 0x44, 0x01, 0, 0x3b]);
    await assert.rejects(makeThumbnail(bomb, 'docs/bomb.gif'), (e: unknown) =>
      e instanceof ImageError && e.code === 'too-large' && e.message.startsWith('docs/bomb.gif'));
    const cut = fixture('rgba.png').subarray(0, 100);
    await assert.rejects(makeThumbnail(cut, 'docs/cut.png'), (e: unknown) =>
      e instanceof ImageError && e.code === 'corrupt' && e.message.startsWith('docs/cut.png'));
  });
});
