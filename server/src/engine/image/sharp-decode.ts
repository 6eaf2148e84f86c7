/**
 * JPEG, 8-bit PNG and WebP decoding through sharp (libvips: libjpeg-turbo's decoder in mozjpeg,
 * libpng + zlib-ng, libwebp), bit-identical to what Pillow's `Image.open(p).convert("RGB")` and
 * `convert("RGBA")` give (measured over every colour type and JPEG subsampling, see README "Images").
 *
 * Settings that matter for that parity:
 * - `ignoreIcc`: Pillow never applies an embedded ICC profile; sharp would convert to sRGB through it.
 * - No `autoOrient`: Pillow (and so Hugging Face's processor) ignores the EXIF orientation.
 * - libjpeg's defaults are what both use: islow integer IDCT and fancy (triangle) chroma upsampling.
 * - CMYK JPEG: sharp would convert through a CMYK ICC profile; we ask for the raw (Adobe-inverted,
 *   as Pillow's "CMYK;I" rawmode does) CMYK samples and apply Pillow's `cmyk2rgb` ourselves.
 * - `failOn: 'truncated'`: a file cut short is an error, as in Pillow (without LOAD_TRUNCATED_IMAGES);
 *   libjpeg's other warnings ("extraneous bytes before marker") are not, as in Pillow.
 * Output is 3 channels for opaque images (greyscale is expanded to RGB by libvips, which equals
 * Pillow's L -> RGB) and 4 for images with alpha (RGBA, LA, palette or colour key with tRNS).
 */

import type { Sharp, SharpOptions } from 'sharp';

import { corruptError } from './errors';
import type { DecodedPixels } from './types';


type SharpFactory = (input: Uint8Array, options: SharpOptions) => Sharp;
let factory: SharpFactory | undefined;

/**
 * Loads sharp once per thread. NOTE: a plain require so that esbuild leaves it external (its native
 * binding sits in the platform package @img/sharp-<os>-<arch>). libvips' operation cache is off: we
 * decode each file once, and a cache would keep the pixels of a large image alive after the answer.
 */
function loadSharp(): SharpFactory {
  if (factory !== undefined) return factory;
  const sharp = require('sharp') as typeof import('sharp');
  sharp.cache(false);
  factory = sharp as unknown as SharpFactory;
  return factory;
}

export interface SharpDecodeOptions {
  /** Format name for messages: 'JPEG', 'PNG', 'WebP'. */
  readonly formatName: string;
  /** libvips' own pixel limit, set to ours so that it never fires first (ours gives the better message). */
  readonly maxPixels: number;
  /** The JPEG has 4 components (CMYK or YCCK): decode raw CMYK and convert as Pillow does. */
  readonly cmyk?: boolean;
}

/**
 * Decodes frame 0 of `bytes` (page 0 of an animated WebP, composited on its canvas as libwebp's
 * WebPAnimDecoder does, which is what Pillow uses too).
 * Precondition: the declared sizes have passed the decompression-bomb guard.
 * @throws ImageError 'corrupt' when libvips rejects the data; Error when sharp cannot be loaded.
 */
export async function decodeWithSharp(bytes: Uint8Array, label: string, options: SharpDecodeOptions): Promise<DecodedPixels> {
  let sharp: SharpFactory;
  try {
    sharp = loadSharp();
  } catch (e) {
    // Not the image's fault: the native package for this platform is missing or broken.
    const detail = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(`image decoding is unavailable (sharp did not load: ${detail}); reinstall the extension.`);
  }
  try {
    const pipeline = sharp(bytes, {
      ignoreIcc: true,
      failOn: 'truncated',
      limitInputPixels: Math.max(1, Math.floor(options.maxPixels)),
      sequentialRead: true,
      page: 0,
      pages: 1,
    });
    if (options.cmyk) {
      const { data, info } = await pipeline.pipelineColourspace('cmyk').toColourspace('cmyk').raw()
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 4) throw new Error(`expected 4 CMYK channels, got ${info.channels}`);
      return { width: info.width, height: info.height, channels: 3, data: cmykToRgb(data, info.width * info.height) };
    }
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 && info.channels !== 4) throw new Error(`unexpected channel count ${info.channels}`);
    return {
      width: info.width,
      height: info.height,
      channels: info.channels,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
  } catch (e) {
    throw corruptError(label, options.formatName, e);
  }
}

/**
 * Pillow's `cmyk2rgb` (src/libImaging/Convert.c): with nk = 255 - k,
 * channel = CLIP8(nk - MULDIV255(c, nk)), where MULDIV255(a, b) = (t + (t >> 8)) >> 8, t = a * b + 128.
 * `cmyk` is [n, 4]; returns [n, 3].
 */
export function cmykToRgb(cmyk: Uint8Array, nPixels: number): Uint8Array {
  const out = new Uint8Array(nPixels * 3);
  for (let i = 0, j = 0; j < out.length; i += 4, j += 3) {
    const nk = 255 - cmyk[i + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = cmyk[i + c]! * nk + 128;
      const v = nk - (((t >> 8) + t) >> 8);
      out[j + c] = v < 0 ? 0 : v;
    }
  }
  return out;
}
