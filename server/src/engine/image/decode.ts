/**
 * Bytes -> RGBA8. Detects the format from magic bytes (never from the file name), checks the
 * declared size against the decompression-bomb limit before any pixel is decoded, then hands the
 * bytes to the format's decoder.
 */

import { DEFAULT_IMAGE_LABEL, ImageError } from './errors';
import { readDeclaredSize, sniffFormat } from './format';
import { decodeGif } from './gif';
import { decodeJpeg } from './jpeg';
import { decodePng } from './png';
import { DEFAULT_MAX_DECODED_PIXELS, type ImageFormat, type RgbaImage } from './types';
import { decodeWebp } from './webp';

export interface DecodeOptions {
  /** How the image is named in error messages, typically its workspace-relative path. */
  readonly name?: string;
  /** Refuse images whose declared width * height exceeds this. Default: Pillow's limit. */
  readonly maxPixels?: number;
}

/** A decoded image and the format it was stored in. */
export interface DecodedImage extends RgbaImage {
  readonly format: ImageFormat;
}

/**
 * Decodes PNG (any bit depth, palette, grey, 16-bit), JPEG, GIF (first frame) or WebP (first frame)
 * into straight-alpha RGBA8, `data` [height, width, 4].
 * @throws ImageError 'empty', 'not-an-image', 'unsupported-format', 'too-large' or 'corrupt'.
 */
export function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): DecodedImage {
  const label = options.name ?? DEFAULT_IMAGE_LABEL;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_DECODED_PIXELS;
  const format = sniffFormat(bytes, label);
  const { width, height } = readDeclaredSize(bytes, format, label);
  checkDeclaredSize(width, height, maxPixels, label);

  let image: RgbaImage;
  switch (format) {
    case 'png':
      image = decodePng(bytes, label);
      break;
    case 'jpeg':
      image = decodeJpeg(bytes, label, maxPixels);
      break;
    case 'gif':
      image = decodeGif(bytes, label);
      break;
    case 'webp':
      image = decodeWebp(bytes, label);
      break;
  }
  // The decoders agree with the header in every file we know of; re-check so that a decoder
  // that reads the size elsewhere can never slip past the guard.
  checkDeclaredSize(image.width, image.height, maxPixels, label);
  return { ...image, format };
}

/**
 * @throws ImageError 'empty' for a zero side, 'too-large' above `maxPixels`.
 */
function checkDeclaredSize(width: number, height: number, maxPixels: number, label: string): void {
  if (width === 0 || height === 0) {
    throw new ImageError('empty', `${label} has no pixels (its header says ${width}x${height}).`, label);
  }
  if (width * height > maxPixels) {
    throw new ImageError(
      'too-large',
      `${label} is ${width}x${height} pixels (${formatCount(width * height)}), more than the limit of ` +
        `${formatCount(maxPixels)}; refusing to decode it in case it is a decompression bomb. ` +
        'Downscale the image and try again.',
      label,
    );
  }
}

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} megapixels` : `${n} pixels`;
}
