/**
 * Bytes -> RGB8 or RGBA8. Detects the format from magic bytes (never from the file name), checks
 * the declared size of the canvas and of every frame, and the bytes the decoder would allocate,
 * against the decompression-bomb limits before any pixel is decoded, then hands the bytes to the
 * format's decoder: sharp for JPEG, 8-bit PNG and WebP, pngjs for 16-bit PNG, omggif for GIF
 * (each bit-identical to Pillow, see the decoders' comments and README "Images").
 */

import { DEFAULT_IMAGE_LABEL, ImageError } from './errors';
import { type DeclaredFrame, readDeclaredSize, readFrames, sniffFormat } from './format';
import { decodeGif } from './gif';
import { decodeJpeg } from './jpeg';
import { decodePng } from './png';
import {
  DEFAULT_MAX_DECODED_BYTES,
  DEFAULT_MAX_DECODED_PIXELS,
  type DecodedPixels,
  type ImageFormat,
} from './types';
import { isOpaque } from './rgb';
import { decodeWebp } from './webp';

export interface DecodeOptions {
  /** How the image is named in error messages, typically its workspace-relative path. */
  readonly name?: string;
  /** Refuse images, or frames, whose declared width * height exceeds this. Default: Pillow's limit. */
  readonly maxPixels?: number;
  /** Refuse files whose decoder would allocate more pixel bytes than this. Default: 1 GiB. */
  readonly maxBytes?: number;
  /**
   * Give an image whose alpha is 255 everywhere as RGBA, as decoded, instead of as RGB (default:
   * RGB). preprocessImage uses it: its resize reads RGBA as RGB, which saves a pass over the image.
   */
  readonly keepOpaqueAlpha?: boolean;
}

/** A decoded image and the format it was stored in. */
export interface DecodedImage extends DecodedPixels {
  readonly format: ImageFormat;
}

/**
 * Decodes PNG (any bit depth, palette, grey, 16-bit), JPEG (any subsampling, grey, CMYK), GIF
 * (first frame) or WebP (first frame) into RGB8 when the image has no transparency (no alpha
 * channel, or one that is 255 everywhere unless `keepOpaqueAlpha`), else straight-alpha RGBA8,
 * `data` [height, width, channels].
 * @throws ImageError 'empty', 'not-an-image', 'unsupported-format', 'too-large' or 'corrupt'.
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<DecodedImage> {
  const label = options.name ?? DEFAULT_IMAGE_LABEL;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_DECODED_PIXELS;
  const format = sniffFormat(bytes, label);
  const declared = readDeclaredSize(bytes, format, label);
  checkDeclaredSize(declared.width, declared.height, maxPixels, label);
  const frames = readFrames(bytes, format);
  frames.forEach((f, i) => checkFrame(f, i, maxPixels, label));
  checkDecodedBytes(format, declared.width * declared.height, frames, bytes, options.maxBytes ?? DEFAULT_MAX_DECODED_BYTES, label);

  let image: DecodedPixels;
  switch (format) {
    case 'png':
      image = await decodePng(bytes, label, maxPixels);
      break;
    case 'jpeg':
      image = await decodeJpeg(bytes, label, maxPixels, declared.components ?? 3);
      break;
    case 'gif':
      image = decodeGif(bytes, label);
      break;
    case 'webp':
      image = await decodeWebp(bytes, label, maxPixels);
      break;
  }
  // The decoders agree with the header in every file we know of; re-check so that a decoder
  // that reads the size elsewhere can never slip past the guard.
  checkDeclaredSize(image.width, image.height, maxPixels, label);
  return { ...(image.channels === 4 && options.keepOpaqueAlpha !== true ? opaqueAsRgb(image) : image), format };
}

/**
 * An RGBA image whose alpha is 255 everywhere (what screenshot tools save) as RGB: that alpha carries
 * nothing, every alpha handling gives these exact RGB values (dropping it, and Pillow's integer
 * compositing over white, checked in the tests), and the RGB pass is cheaper than compositing.
 * Returns `image` itself when any pixel is not opaque.
 */
export function opaqueAsRgb(image: DecodedPixels): DecodedPixels {
  if (!isOpaque(image.data)) return image;
  const src = image.data;
  const n = image.width * image.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0; j < out.length; i += 4, j += 3) {
    out[j] = src[i]!;
    out[j + 1] = src[i + 1]!;
    out[j + 2] = src[i + 2]!;
  }
  return { width: image.width, height: image.height, channels: 3, data: out };
}

/**
 * @throws ImageError 'empty' for a zero side, 'too-large' above `maxPixels`.
 */
function checkDeclaredSize(width: number, height: number, maxPixels: number, label: string, what = ''): void {
  if (width === 0 || height === 0) {
    throw new ImageError('empty', `${label}${what} has no pixels (its header says ${width}x${height}).`, label);
  }
  if (width * height > maxPixels) {
    throw new ImageError(
      'too-large',
      `${label}${what} is ${width}x${height} pixels (${formatCount(width * height)}), more than the limit of ` +
        `${formatCount(maxPixels)}; refusing to decode it in case it is a decompression bomb. ` +
        'Downscale the image and try again.',
      label,
    );
  }
}

/** Every frame is checked, not only the first: decoders allocate by the frame's declared size. */
function checkFrame(frame: DeclaredFrame, index: number, maxPixels: number, label: string): void {
  checkDeclaredSize(frame.width, frame.height, maxPixels, label, ` (frame ${index})`);
}

/**
 * Bytes of pixel buffers the decoder allocates, from the declared sizes: the output canvas at the
 * decoder's bytes per pixel, plus a frame buffer for animations (omggif: 1 index byte per frame-0
 * pixel; libwebp: an RGBA frame next to the RGBA canvas), plus pngjs's 16-bit intermediates
 * (inflated rows and 4 x 16-bit samples, 16 bytes per pixel, next to the 4-byte output).
 * @throws ImageError 'too-large' above `maxBytes`.
 */
function checkDecodedBytes(
  format: ImageFormat, canvasPixels: number, frames: readonly DeclaredFrame[], bytes: Uint8Array, maxBytes: number, label: string,
): void {
  const largestFrame = Math.max(0, ...frames.map((f) => f.width * f.height));
  let total: number;
  if (format === 'png') total = canvasPixels * (bytes[24] === 16 ? 20 : 4);
  else if (format === 'jpeg') total = canvasPixels * 7; // CMYK samples and the RGB output at worst
  else if (format === 'gif') total = canvasPixels * 4 + (frames[0] ? frames[0].width * frames[0].height : 0);
  else total = canvasPixels * 4 * (frames.length > 0 ? 2 : 1) + largestFrame * 4;
  if (total > maxBytes) {
    throw new ImageError(
      'too-large',
      `${label} would need ${(total / 2 ** 20).toFixed(0)} MiB to decode, more than the limit of ` +
        `${(maxBytes / 2 ** 20).toFixed(0)} MiB; refusing to decode it in case it is a decompression bomb. ` +
        'Downscale the image (or save it with 8 bits per channel) and try again.',
      label,
    );
  }
}

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} megapixels` : `${n} pixels`;
}
