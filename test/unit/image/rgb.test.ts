import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';

import { compositeOverWhite, dropAlpha, toRgb } from '../../../server/src/engine/image/rgb';

/** A 256 x 256 RGBA image whose pixel (x, y) is (x, 255 - x, x >> 1, alpha y): every colour/alpha pair. */
function allPairs() {
  const data = new Uint8Array(256 * 256 * 4);
  for (let y = 0; y < 256; y++) {
    for (let x = 0; x < 256; x++) data.set([x, 255 - x, x >> 1, y], (y * 256 + x) * 4);
  }
  return { width: 256, height: 256, data };
}

describe('toRgb', () => {
  it('drops alpha by default, keeping the colour stored under transparent pixels (Pillow convert("RGB"))', () => {
    const image = { width: 2, height: 1, data: new Uint8Array([10, 20, 30, 0, 40, 50, 60, 128]) };
    assert.deepEqual(toRgb(image).data, new Uint8Array([10, 20, 30, 40, 50, 60]));
    assert.deepEqual(dropAlpha(image).data, new Uint8Array([10, 20, 30, 40, 50, 60]));
  });

  it('composites over white with Pillow alpha_composite rounding on request', () => {
    // (0, 0, 0, 128) over white: coef1 = 16384, coef2 = 16256 -> ((x >> 8) + x) >> 8 >> 7 = 127.
    const image = { width: 3, height: 1, data: new Uint8Array([0, 0, 0, 128, 9, 9, 9, 0, 200, 100, 50, 255]) };
    assert.deepEqual(toRgb(image, 'white').data, new Uint8Array([127, 127, 127, 255, 255, 255, 200, 100, 50]));
  });

  it('matches Pillow alpha_composite over white for every colour and alpha value', () => {
    // Digest of np.array(Image.alpha_composite(white, allPairs).convert("RGB")) from Pillow 9.4.
    const digest = createHash('sha256').update(compositeOverWhite(allPairs()).data).digest('hex');
    assert.equal(digest, '1891e6c8d65b111525d1f09a1c94bbb46864e2c5ffb6b471eb5ad52711e538ad');
  });
});
