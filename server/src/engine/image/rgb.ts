/**
 * RGBA -> RGB, the `do_convert_rgb` step of the image processor.
 *
 * What Hugging Face does (transformers 5.17, src/transformers/image_transforms.py
 * `convert_to_rgb`, used by both PilBackend and TorchvisionBackend in image_processing_backends.py,
 * hence by Qwen2VLImageProcessorPil): `image.convert("RGB")` when the mode is not already RGB.
 * For RGBA, Pillow's `rgba2rgb` (src/libImaging/Convert.c) simply DROPS alpha: a transparent pixel
 * shows whatever colour is stored under it, often black. `transformers.image_utils.load_image`
 * also ends in `convert("RGB")`. So the exact behaviour is 'drop', and it is our default.
 *
 * Compositing over white is what a few other processors do (idefics2, mllama: their own
 * `convert_to_rgb` is `Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")`), and
 * what most viewers show for a transparent PNG. It is offered as 'white', reproducing Pillow's
 * integer alpha_composite (src/libImaging/AlphaComposite.c) exactly, for callers who prefer what
 * the user sees over parity with Hugging Face.
 */

import type { RgbaImage, RgbImage } from './types';

/** How transparent pixels become opaque. See the file comment. */
export type AlphaHandling = 'drop' | 'white';

/** Converts `image` ([height, width, 4]) to RGB ([height, width, 3]). */
export function toRgb(image: RgbaImage, alpha: AlphaHandling = 'drop'): RgbImage {
  return alpha === 'drop' ? dropAlpha(image) : compositeOverWhite(image);
}

/** Pillow `convert("RGB")` of an RGBA image: keep r, g, b and ignore a. */
export function dropAlpha(image: RgbaImage): RgbImage {
  const nPixels = image.width * image.height;
  const src = image.data;
  const out = new Uint8Array(nPixels * 3);
  for (let i = 0, j = 0; i < nPixels * 4; i += 4, j += 3) {
    out[j] = src[i]!;
    out[j + 1] = src[i + 1]!;
    out[j + 2] = src[i + 2]!;
  }
  return { width: image.width, height: image.height, data: out };
}

/** True when every alpha sample of `rgba` ([n, 4]) is 255: then every AlphaHandling gives the RGB samples as they are. */
export function isOpaque(rgba: Uint8Array): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return false;
  return true;
}

/** Fixed-point fraction bits in Pillow's alpha_composite. */
const PRECISION_BITS = 7;

/**
 * Pillow `Image.alpha_composite(white, image).convert("RGB")`, in Pillow's integer arithmetic.
 * With an opaque white destination its formula reduces to
 *   coef1 = a * 255 * 255 * 128 / outa255 (integer division), coef2 = 255 * 128 - coef1,
 *   out = div255(c * coef1 + 255 * coef2 + (128 << 7)) >> 7,
 * where div255(x) = ((x >> 8) + x) >> 8, and a fully transparent pixel is plain white.
 */
export function compositeOverWhite(image: RgbaImage): RgbImage {
  const nPixels = image.width * image.height;
  const src = image.data;
  const out = new Uint8Array(nPixels * 3);
  const dstA = 255;
  const dstC = 255;
  for (let i = 0, j = 0; i < nPixels * 4; i += 4, j += 3) {
    const a = src[i + 3]!;
    if (a === 0) {
      out[j] = dstC;
      out[j + 1] = dstC;
      out[j + 2] = dstC;
      continue;
    }
    // Pillow computes in UINT32; every value here stays below 2^32, so JS numbers are exact.
    const blend = dstA * (255 - a);
    const outa255 = a * 255 + blend;
    const coef1 = Math.floor((a * 255 * 255 * (1 << PRECISION_BITS)) / outa255);
    const coef2 = 255 * (1 << PRECISION_BITS) - coef1;
    for (let c = 0; c < 3; c++) {
      const tmp = src[i + c]! * coef1 + dstC * coef2 + (0x80 << PRECISION_BITS);
      out[j + c] = (((tmp >> 8) + tmp) >> 8) >> PRECISION_BITS;
    }
  }
  return { width: image.width, height: image.height, data: out };
}
