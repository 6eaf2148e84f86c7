import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { resizeBicubic } from '../../../server/src/engine/image/resize';
import { fixtureRgb, firstDifference, manifest } from './fixtures';

describe('resizeBicubic', () => {
  it('has Pillow reference cases to compare against', () => {
    assert.ok(manifest.resize.length >= 6, 'fixtures/manifest.json lists the resize cases');
  });

  for (const c of manifest.resize) {
    it(`reproduces Pillow ${manifest.pillow} BICUBIC byte for byte: ${c.input} -> ${c.width}x${c.height}`, () => {
      const input = fixtureRgb(c.input);
      const expected = fixtureRgb(c.expected);
      const got = resizeBicubic(input, c.width, c.height);
      assert.equal(got.width, c.width);
      assert.equal(got.height, c.height);
      assert.ok(Buffer.from(got.data).equals(Buffer.from(expected.data)), firstDifference(got.data, expected.data));
    });
  }

  it('returns an equal copy, not the same buffer, when the size is unchanged', () => {
    const input = fixtureRgb(manifest.resize[0]!.input);
    const got = resizeBicubic(input, input.width, input.height);
    assert.deepEqual(got.data, input.data);
    assert.notEqual(got.data, input.data);
  });

  it('keeps a flat image flat at every scale, since the weights sum to one', () => {
    const flat = { width: 9, height: 5, data: new Uint8Array(9 * 5 * 3).fill(137) };
    for (const [w, h] of [[1, 1], [4, 3], [28, 56], [9, 17], [30, 5]] as const) {
      const got = resizeBicubic(flat, w, h);
      assert.ok(got.data.every((v) => v === 137), `${w}x${h}`);
    }
  });

  it('overshoots and clips at hard edges like bicubic should (a=-0.5 has negative lobes)', () => {
    // A black|white step upscaled: pixels next to the edge ring below 0 / above 255 and are clipped,
    // so the output holds exact 0 and 255 but also values strictly between them.
    const step = { width: 4, height: 1, data: new Uint8Array([0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255]) };
    const got = resizeBicubic(step, 16, 1).data;
    assert.equal(got[0], 0);
    assert.equal(got[got.length - 1], 255);
    assert.ok(got.some((v) => v > 0 && v < 255));
  });
});
