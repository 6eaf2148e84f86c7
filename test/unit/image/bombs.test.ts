/**
 * Hostile and damaged files (issue 9 item 2, issue 13 "Bad input"): every one gives a clear
 * ImageError naming the file, quickly, without allocating what the header claims, and nothing is
 * printed on stdout. The pool tests check the time budget and that the event loop keeps turning.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { decodeImage } from '../../../server/src/engine/image/decode';
import { ImageError, type ImageErrorCode } from '../../../server/src/engine/image/errors';
import { ImageWorkerPool } from '../../../server/src/engine/image/isolate';

const DIR = join(__dirname, 'fixtures', 'decode');
const fixture = (name: string) => new Uint8Array(readFileSync(join(DIR, name)));

/** Decodes `bytes` and expects ImageError `code` naming `name` within `ms`; returns the error. */
async function refuses(bytes: Uint8Array, code: ImageErrorCode, name: string, ms = 2000, maxPixels?: number): Promise<ImageError> {
  const t0 = performance.now();
  let caught: unknown;
  try {
    await decodeImage(bytes, { name, maxPixels });
  } catch (e) {
    caught = e;
  }
  const took = performance.now() - t0;
  assert.ok(caught instanceof ImageError, `expected an ImageError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.startsWith(name), `the message names the file: ${caught.message}`);
  assert.equal(caught.source, name);
  assert.ok(took < ms, `took ${took.toFixed(0)} ms`);
  return caught;
}

/** A GIF89a with a `sw` x `sh` screen (2-colour global table) and one frame declaring `fw` x `fh`. */
function gifWithFrame(sw: number, sh: number, fw: number, fh: number): Uint8Array {
  const u16 = (v: number) => [v & 0xff, v >> 8];
  return new Uint8Array([
    ...Buffer.from('GIF89a'), ...u16(sw), ...u16(sh), 0x80, 0, 0, // screen, global table of 2 colours
    0, 0, 0, 255, 255, 255,
    0x2c, 0, 0, 0, 0, ...u16(fw), ...u16(fh), 0, // image descriptor at (0, 0)
    2, 2, 0x44, 0x01, 0, // LZW minimum code size, one data sub-block, terminator
    0x3b,
  ]);
}

/** What decoding each of `files` writes on stdout, in a child process (the test runner reports through ours). */
function stdoutOfDecoding(files: readonly Uint8Array[]): string {
  const script = `
    const { decodeImage } = require(${JSON.stringify(join(__dirname, '../../../server/src/engine/image/decode.ts'))});
    (async () => {
      for (const b64 of ${JSON.stringify(files.map((f) => Buffer.from(f).toString('base64')))}) {
        await decodeImage(new Uint8Array(Buffer.from(b64, 'base64'))).catch(() => undefined);
      }
    })();`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('image bombs', () => {
  it('refuses the 35-byte GIF whose 1x1 screen hides a 65535x65535 frame, before allocating it', async () => {
    const gif = gifWithFrame(1, 1, 65535, 65535);
    assert.equal(gif.length, 35);
    const e = await refuses(gif, 'too-large', 'bomb.gif');
    assert.match(e.message, /bomb\.gif \(frame 0\) is 65535x65535 pixels/);
  });

  it('checks every GIF frame, not only the first', async () => {
    // Frame 0 fits; a second frame declares 3000x3000, above a 1-megapixel limit.
    const one = gifWithFrame(8, 8, 8, 8);
    const second = gifWithFrame(8, 8, 3000, 3000).subarray(19, 34); // its image descriptor and data
    const gif = new Uint8Array([...one.subarray(0, 34), ...second, 0x3b]);
    assert.match((await refuses(gif, 'too-large', 'two.gif', 2000, 1e6)).message, /\(frame 1\) is 3000x3000/);
  });

  it('refuses a GIF whose first frame reaches outside its screen', async () => {
    await refuses(gifWithFrame(4, 4, 40, 40), 'corrupt', 'outside.gif');
  });

  it('refuses an animated WebP whose frame declares 16384x16384 on a small canvas', async () => {
    const webp = fixture('webp-animated.webp');
    // The first ANMF chunk: width-1 and height-1 are 24-bit little-endian at payload offsets 6 and 9.
    const text = Buffer.from(webp).toString('latin1');
    const anmf = text.indexOf('ANMF') + 8;
    assert.ok(anmf > 8);
    webp.set([0xff, 0x3f, 0x00, 0xff, 0x3f, 0x00], anmf + 6);
    assert.match((await refuses(webp, 'too-large', 'anim.webp')).message, /\(frame 0\) is 16384x16384/);
  });

  it('refuses a JPEG whose header declares 65500x65500', async () => {
    const jpeg = fixture('jpeg-420.jpg');
    const sof = Buffer.from(jpeg).indexOf(Buffer.from([0xff, 0xc0]));
    jpeg.set([0xff, 0xdc, 0xff, 0xdc], sof + 5); // height, width
    await refuses(jpeg, 'too-large', 'huge.jpg');
  });

  it('refuses a file whose decode would need more than the byte budget', async () => {
    // A 16-bit PNG goes through pngjs at 20 bytes per pixel: 1/5 of the pixels the budget allows would pass.
    const png = fixture('png-rgb16.png');
    let caught: unknown;
    try {
      await decodeImage(png, { name: 'deep.png', maxBytes: 37 * 27 * 20 - 1 });
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof ImageError && caught.code === 'too-large', String(caught));
    assert.match(caught.message, /would need .* MiB to decode/);
    assert.equal((await decodeImage(png, { maxBytes: 37 * 27 * 20 })).width, 37);
  });
});

const CUT_FILES = ['png-rgb8.png', 'png-rgb16.png', 'jpeg-420.jpg', 'jpeg-420-progressive.jpg', 'gif-animated.gif',
  'webp-lossy.webp', 'webp-lossless-alpha.webp', 'webp-animated.webp'];
const cutAt = (file: string) => Math.floor(fixture(file).length * 0.6);

describe('damaged files', () => {
  for (const file of CUT_FILES) {
    it(`refuses ${file} cut short as corrupt`, async () => {
      await refuses(fixture(file).subarray(0, cutAt(file)), 'corrupt', `cut/${file}`);
    });
  }

  it('refuses a GIF whose image data ends early (omggif printed a warning on stdout and returned a partial image)', async () => {
    // An 8x8 frame whose LZW data is 2 bytes, well-formed otherwise.
    await refuses(gifWithFrame(8, 8, 8, 8), 'corrupt', 'short.gif');
  });

  it('prints nothing on stdout while refusing any of them', () => {
    const files = [...CUT_FILES.map((file) => fixture(file).subarray(0, cutAt(file))), gifWithFrame(8, 8, 8, 8)];
    assert.equal(stdoutOfDecoding(files), '');
  });

  it('decodes a JPEG that declares 4000x4000 but holds 37x27 pixels of data as Pillow does (grey fill), in bounded time', async () => {
    const jpeg = fixture('jpeg-420.jpg');
    const sof = Buffer.from(jpeg).indexOf(Buffer.from([0xff, 0xc0]));
    jpeg.set([0x0f, 0xa0, 0x0f, 0xa0], sof + 5); // height, width
    const t0 = performance.now();
    const image = await decodeImage(jpeg, { name: 'lying.jpg' });
    assert.deepEqual([image.width, image.height, image.channels], [4000, 4000, 3]);
    assert.deepEqual([...image.data.subarray(-3)], [128, 128, 128]); // libjpeg's fill for missing data
    assert.ok(performance.now() - t0 < 5000);
  });

  it('refuses a WebP whose bitstream libwebp rejects', async () => {
    const webp = fixture('webp-lossy.webp');
    for (let i = 40; i < webp.length; i += 3) webp[i] ^= 0x5a;
    await refuses(webp, 'corrupt', 'garbled.webp');
  });
});

describe('image worker pool', () => {
  const pool = new ImageWorkerPool({ timeoutMs: 20_000, maxHeapMb: 256, workers: 1 });
  after(() => pool.close());

  it('stops a task past its time budget with a timeout error naming the file, and goes on', async () => {
    const big = new Uint8Array(readFileSync(join(__dirname, 'fixtures', 'pipeline-12x1500.png')));
    await assert.rejects(pool.decode(big, { name: 'slow.png' }, 1), (e: unknown) =>
      e instanceof ImageError && e.code === 'timeout' && e.message.startsWith('slow.png took more than'));
    assert.equal((await pool.decode(fixture('png-rgb8.png'), { name: 'next.png' })).width, 37);
  });

  it('passes ImageErrors through with their code and file', async () => {
    await assert.rejects(pool.decode(new TextEncoder().encode('<html>'), { name: 'page.png' }), (e: unknown) =>
      e instanceof ImageError && e.code === 'not-an-image' && e.source === 'page.png');
  });

  it('keeps the event loop turning while a worker decodes', async () => {
    // The 65535x65535-frame GIF is refused at once now; a legal 3000x3000 RGB JPEG-free PNG takes a while
    // to make and decode, so count timer ticks while the pool works on several of them.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 20 }, () => pool.decode(fixture('jpeg-420-progressive.jpg'))));
    clearInterval(timer);
    const ms = performance.now() - t0;
    assert.ok(ticks >= Math.min(5, ms / 4), `${ticks} ticks in ${ms.toFixed(0)} ms`);
  });
});
