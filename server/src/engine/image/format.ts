/**
 * Format detection from magic bytes, and the declared size of an image read from its header
 * without decoding any pixels. The size is what the decompression-bomb guard checks, so it must
 * come from the same fields the decoders use.
 */

import { ImageError, leadingBytesText } from './errors';
import { FORMAT_LABELS, type ImageFormat } from './types';

/** Width and height as the file header declares them. */
export interface DeclaredSize {
  readonly width: number;
  readonly height: number;
  /** JPEG only: the number of colour components of the frame (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK). */
  readonly components?: number;
}

/** One frame of a GIF or animated WebP: its rectangle on the canvas, as declared. */
export interface DeclaredFrame {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** Formats we recognise only to say clearly that they are not supported. */
const UNSUPPORTED: readonly { readonly name: string; readonly test: (b: Uint8Array) => boolean }[] = [
  { name: 'BMP', test: (b) => startsWith(b, [0x42, 0x4d]) },
  { name: 'TIFF', test: (b) => startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a]) },
  { name: 'ICO', test: (b) => startsWith(b, [0x00, 0x00, 0x01, 0x00]) },
  { name: 'HEIC', test: (b) => isoBrand(b, ['heic', 'heix', 'heim', 'heis', 'mif1', 'msf1']) },
  { name: 'AVIF', test: (b) => isoBrand(b, ['avif', 'avis']) },
  { name: 'JPEG XL', test: (b) => startsWith(b, [0xff, 0x0a]) || startsWith(b, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20]) },
  { name: 'JPEG 2000', test: (b) => startsWith(b, [0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20]) },
  { name: 'Photoshop', test: (b) => startsWith(b, [0x38, 0x42, 0x50, 0x53]) },
  { name: 'SVG', test: (b) => /^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*<svg[\s>]/i.test(asciiPrefix(b, 512)) },
];

/**
 * Returns the format of `bytes` from its magic number.
 * @throws ImageError 'empty' for zero bytes, 'unsupported-format' for images we do not decode, and
 *   'not-an-image' for anything else.
 */
export function sniffFormat(bytes: Uint8Array, label: string): ImageFormat {
  if (bytes.length === 0) {
    throw new ImageError('empty', `${label} is empty (0 bytes); expected PNG, JPEG, WebP or GIF data.`, label);
  }
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x47, 0x49, 0x46, 0x38])) return 'gif';
  if (startsWith(bytes, [0x52, 0x49, 0x46, 0x46]) && asciiAt(bytes, 8, 4) === 'WEBP') return 'webp';

  for (const f of UNSUPPORTED) {
    if (f.test(bytes)) {
      throw new ImageError(
        'unsupported-format',
        `${label} is a ${f.name} image, which is not supported; convert it to PNG (or JPEG, WebP, GIF) and try again.`,
        label,
      );
    }
  }
  const head = asciiPrefix(bytes, 64);
  const hint = head.startsWith('version https://git-lfs')
    ? ' It is a Git LFS pointer: run `git lfs pull` to fetch the real file.'
    : '';
  throw new ImageError(
    'not-an-image',
    `${label} is not an image (starts with '${leadingBytesText(bytes)}'); expected PNG, JPEG, WebP or GIF.${hint}`,
    label,
  );
}

/**
 * Reads width and height from the header of a file already identified as `format`.
 * @throws ImageError 'corrupt' when the header is truncated or malformed.
 */
export function readDeclaredSize(bytes: Uint8Array, format: ImageFormat, label: string): DeclaredSize {
  const size = HEADER_READERS[format](bytes);
  if (size === undefined) {
    throw new ImageError(
      'corrupt',
      `${label} starts like a ${FORMAT_LABELS[format]} image but its header is truncated or malformed; ` +
        're-export the image.',
      label,
    );
  }
  return size;
}

const HEADER_READERS: Readonly<Record<ImageFormat, (b: Uint8Array) => DeclaredSize | undefined>> = {
  png: readPngSize,
  jpeg: readJpegSize,
  gif: readGifSize,
  webp: readWebpSize,
};

/** PNG: the first chunk must be IHDR (length 13) with big-endian width and height. */
function readPngSize(b: Uint8Array): DeclaredSize | undefined {
  if (b.length < 24 || readU32BE(b, 8) !== 13 || asciiAt(b, 12, 4) !== 'IHDR') return undefined;
  return { width: readU32BE(b, 16), height: readU32BE(b, 20) };
}

/**
 * JPEG: walk the marker segments until a start-of-frame (SOF0..SOF15 except DHT C4, JPG C8 and
 * DAC CC), whose payload holds precision, then 16-bit height and width.
 */
function readJpegSize(b: Uint8Array): DeclaredSize | undefined {
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return undefined;
    const marker = b[p + 1]!;
    if (marker === 0xff) {
      p += 1; // Fill byte before a marker.
      continue;
    }
    // Standalone markers (TEM, RSTn) carry no length.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2;
      continue;
    }
    const length = (b[p + 2]! << 8) | b[p + 3]!;
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (p + 10 > b.length) return undefined;
      return { height: (b[p + 5]! << 8) | b[p + 6]!, width: (b[p + 7]! << 8) | b[p + 8]!, components: b[p + 9]! };
    }
    if (marker === 0xda || marker === 0xd9 || length < 2) return undefined; // Scan or end before any frame.
    p += 2 + length;
  }
  return undefined;
}

/** GIF: the logical screen descriptor follows the 6-byte signature, little-endian. */
function readGifSize(b: Uint8Array): DeclaredSize | undefined {
  if (b.length < 10) return undefined;
  return { width: b[6]! | (b[7]! << 8), height: b[8]! | (b[9]! << 8) };
}

/**
 * WebP: the first chunk after "RIFF....WEBP" is VP8 (lossy), VP8L (lossless) or VP8X (extended,
 * which declares the canvas size and is what animated and alpha files use).
 */
function readWebpSize(b: Uint8Array): DeclaredSize | undefined {
  if (b.length < 30) return undefined;
  const fourcc = asciiAt(b, 12, 4);
  const d = 20; // Start of the first chunk's payload.
  if (fourcc === 'VP8 ') {
    // 3-byte frame tag, then the start code 9d 01 2a, then 14-bit width and height (2 scale bits).
    if (b[d + 3] !== 0x9d || b[d + 4] !== 0x01 || b[d + 5] !== 0x2a) return undefined;
    return { width: (b[d + 6]! | (b[d + 7]! << 8)) & 0x3fff, height: (b[d + 8]! | (b[d + 9]! << 8)) & 0x3fff };
  }
  if (fourcc === 'VP8L') {
    // Signature 0x2f, then width-1 and height-1 as 14-bit fields packed little-endian.
    if (b[d] !== 0x2f) return undefined;
    const bits = b[d + 1]! | (b[d + 2]! << 8) | (b[d + 3]! << 16) | (b[d + 4]! << 24);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (fourcc === 'VP8X') {
    // Flags (1 byte), reserved (3), canvas width-1 (24-bit), canvas height-1 (24-bit).
    return { width: readU24LE(b, d + 4) + 1, height: readU24LE(b, d + 7) + 1 };
  }
  return undefined;
}

/**
 * Every frame a GIF or WebP file declares, read from the block structure without decoding pixels
 * (PNG and JPEG have a single frame: []). The decompression-bomb guard checks each one, because
 * decoders allocate by the frame's own size, not the canvas's: a 35-byte GIF can declare a 1x1 screen
 * and a 65535x65535 frame. A walk that runs off the end of the data stops there: the frames it saw
 * are returned, and the decoder reports the truncation.
 */
export function readFrames(bytes: Uint8Array, format: ImageFormat): DeclaredFrame[] {
  if (format === 'gif') return readGifFrames(bytes);
  if (format === 'webp') return readWebpFrames(bytes);
  return [];
}

/**
 * GIF: after the 13-byte header and the global colour table, blocks until the trailer (0x3B):
 * image descriptors (0x2C: x, y, width, height little-endian, flags, local colour table, LZW code
 * size, data sub-blocks) and extensions (0x21: label, sub-blocks).
 */
function readGifFrames(b: Uint8Array): DeclaredFrame[] {
  const frames: DeclaredFrame[] = [];
  if (b.length < 13) return frames;
  let p = 13 + (b[10]! & 0x80 ? 3 << ((b[10]! & 7) + 1) : 0);
  const skipSubBlocks = (): void => {
    while (p < b.length) {
      const size = b[p]!;
      p += 1 + size;
      if (size === 0) return;
    }
  };
  while (p < b.length) {
    const kind = b[p]!;
    if (kind === 0x2c) {
      if (p + 10 > b.length) break;
      frames.push({ x: readU16LE(b, p + 1), y: readU16LE(b, p + 3), width: readU16LE(b, p + 5), height: readU16LE(b, p + 7) });
      const flags = b[p + 9]!;
      p += 10 + (flags & 0x80 ? 3 << ((flags & 7) + 1) : 0) + 1; // descriptor, local table, LZW code size
      skipSubBlocks();
    } else if (kind === 0x21) {
      p += 2;
      skipSubBlocks();
    } else {
      break; // 0x3B trailer, or garbage the decoder will judge.
    }
  }
  return frames;
}

/** WebP: the ANMF chunks of an animation (x/2, y/2, width-1, height-1 as 24-bit little-endian). */
function readWebpFrames(b: Uint8Array): DeclaredFrame[] {
  const frames: DeclaredFrame[] = [];
  let p = 12;
  while (p + 8 <= b.length) {
    const size = readU32LE(b, p + 4);
    if (asciiAt(b, p, 4) === 'ANMF' && p + 8 + 12 <= b.length) {
      const d = p + 8;
      frames.push({ x: readU24LE(b, d) * 2, y: readU24LE(b, d + 3) * 2, width: readU24LE(b, d + 6) + 1, height: readU24LE(b, d + 9) + 1 });
    }
    p += 8 + size + (size & 1); // Chunks are padded to an even size.
  }
  return frames;
}

function startsWith(b: Uint8Array, prefix: readonly number[]): boolean {
  return b.length >= prefix.length && prefix.every((v, i) => b[i] === v);
}

/** ISO base media files (HEIC, AVIF) have "ftyp" at offset 4 followed by the major brand. */
function isoBrand(b: Uint8Array, brands: readonly string[]): boolean {
  return asciiAt(b, 4, 4) === 'ftyp' && brands.includes(asciiAt(b, 8, 4));
}

function asciiAt(b: Uint8Array, offset: number, n: number): string {
  return String.fromCharCode(...b.subarray(offset, offset + n));
}

function asciiPrefix(b: Uint8Array, n: number): string {
  return String.fromCharCode(...b.subarray(0, n));
}

export function readU32BE(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) >>> 0) + (b[p + 1]! << 16) + (b[p + 2]! << 8) + b[p + 3]!;
}

function readU16LE(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8);
}

function readU32LE(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

export function readU24LE(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16);
}
