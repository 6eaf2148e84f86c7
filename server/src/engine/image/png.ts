/**
 * PNG decoding: 1/2/4/8-bit files through sharp (libpng + zlib-ng, native and fast), 16-bit files
 * through pngjs, with samples mapped to 8 bits exactly the way Pillow does when Hugging Face opens
 * the file and calls `convert("RGB")`.
 *
 * Pillow's PNG plugin (src/PIL/PngImagePlugin.py `_MODES`, Pillow 12.3) and unpackers
 * (src/libImaging/Unpack.c) give, per IHDR bit depth and colour type:
 * - 1/2/4-bit grey: scaled to 0..255 (x255, x85, x17); 8-bit anything and palettes of any depth:
 *   taken as is. libvips gives the same values, tRNS included (measured: README "Images").
 * - 16-bit RGB, RGBA and grey+alpha: rawmodes "RGB;16B", "RGBA;16B", "LA;16B" keep only the HIGH
 *   byte of each big-endian sample (`unpackRGB16B` reads in[0], in[2], in[4]). libvips and pngjs
 *   both round v * 255 / 65535 instead (0x80ff -> 128 in Pillow, 129 there), so 16-bit files go
 *   through pngjs's raw 16-bit samples and we take `v >> 8`.
 * - 16-bit grey: mode "I;16", and `convert("RGB")` uses `I16_RGB` in src/libImaging/Convert.c,
 *   which CLIPS: v <= 255 stays v, anything larger becomes 255. It does not scale. A typical
 *   16-bit greyscale PNG therefore turns almost entirely white in Hugging Face; we reproduce
 *   that on purpose so that our pixel values match theirs bit for bit.
 * tRNS transparency becomes alpha 0; Pillow's `convert("RGB")` ignores it, and so does dropping alpha.
 * NOTE: for 16-bit grey and RGB images pngjs also zeroes the colour of pixels that match the tRNS
 * colour; Pillow keeps it, so we put the tRNS colour back (those pixels have that colour by definition).
 */

import { PNG } from 'pngjs';

import { corruptError } from './errors';
import { readU32BE } from './format';
import { decodeWithSharp } from './sharp-decode';
import type { DecodedPixels } from './types';

/** PNG IHDR colour types for greyscale and RGB without alpha (the two that tRNS keys by colour). */
const COLOR_TYPE_GREY = 0;
const COLOR_TYPE_RGB = 2;

/**
 * Decodes a PNG file into RGB8 (no alpha channel or tRNS) or straight-alpha RGBA8.
 * Precondition: the declared size has already passed the decompression-bomb guard.
 * @throws ImageError 'corrupt' when the data is damaged (bad CRC, truncated stream, ...).
 */
export function decodePng(bytes: Uint8Array, label: string, maxPixels: number): Promise<DecodedPixels> | DecodedPixels {
  // IHDR: bit depth at offset 24 (the header guard has checked that IHDR is there).
  return bytes[24] === 16 ? decodePng16(bytes, label) : decodeWithSharp(bytes, label, { formatName: 'PNG', maxPixels });
}

/** A 16-bit PNG through pngjs's raw samples, mapped to 8 bits as Pillow does (see the file comment). */
function decodePng16(bytes: Uint8Array, label: string): DecodedPixels {
  const colorType = bytes[25];
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    png = PNG.sync.read(buffer, { skipRescale: true });
  } catch (e) {
    throw corruptError(label, 'PNG', e);
  }
  const { width, height } = png;
  const trns = colorType === COLOR_TYPE_GREY || colorType === COLOR_TYPE_RGB ? readTrnsColor(bytes) : undefined;
  // NOTE: with skipRescale pngjs returns its Uint16Array of raw samples, [height, width, 4],
  // alpha 65535 where the file has none, despite the Buffer type in @types/pngjs.
  const raw = png.data as unknown as Uint16Array;
  const n = width * height * 4;
  const data = new Uint8Array(n);
  if (colorType === COLOR_TYPE_GREY) {
    for (let i = 0; i < n; i += 4) {
      const v = raw[i]!;
      const g = v > 255 ? 255 : v;
      data[i] = g;
      data[i + 1] = g;
      data[i + 2] = g;
      data[i + 3] = raw[i + 3]! >> 8;
    }
  } else {
    for (let i = 0; i < n; i++) data[i] = raw[i]! >> 8;
  }
  if (trns !== undefined) {
    const g = Math.min(trns[0]!, 255);
    restoreTransparentColor(data, trns.length === 1 ? [g, g, g] : trns.map((v) => v >> 8));
  }
  return { width, height, channels: 4, data };
}

/** Sets the colour of every fully transparent pixel of `data` ([height, width, 4]) to `rgb`. */
function restoreTransparentColor(data: Uint8Array, rgb: readonly number[]): void {
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) {
      data[i] = rgb[0]!;
      data[i + 1] = rgb[1]!;
      data[i + 2] = rgb[2]!;
    }
  }
}

/**
 * Returns the samples of the tRNS chunk of a grey (1 value) or RGB (3 values) PNG, in the image's
 * bit depth, or undefined when there is none. Chunks are walked from the signature up to IDAT.
 */
function readTrnsColor(bytes: Uint8Array): number[] | undefined {
  let p = 8;
  while (p + 8 <= bytes.length) {
    const length = readU32BE(bytes, p);
    const type = String.fromCharCode(bytes[p + 4]!, bytes[p + 5]!, bytes[p + 6]!, bytes[p + 7]!);
    if (type === 'IDAT' || type === 'IEND') return undefined;
    if (type === 'tRNS') {
      const values: number[] = [];
      for (let q = p + 8; q + 1 < p + 8 + length && q + 1 < bytes.length; q += 2) {
        values.push((bytes[q]! << 8) | bytes[q + 1]!);
      }
      return values.length === 1 || values.length === 3 ? values : undefined;
    }
    p += 12 + length;
  }
  return undefined;
}
