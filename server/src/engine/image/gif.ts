/**
 * GIF decoding (first frame only) through omggif, matching what Pillow hands to Hugging Face.
 *
 * Pillow opens frame 0 of a GIF as a palette image ("P", src/PIL/GifImagePlugin.py) and
 * `convert("RGB")` looks every index up in the palette, including the transparent index: its
 * pixels take the palette colour of that index, not a background. Pixels outside the first
 * frame's rectangle hold the transparent index when the frame has one (`load_prepare` fills the
 * canvas with it), otherwise index 0. omggif only writes the frame's opaque pixels, so we fill
 * the rest with those palette colours ourselves. Transparent pixels get alpha 0, which only the
 * opt-in compositing in rgb.ts looks at.
 *
 * omggif reports a frame whose LZW data ends early with console.log ("gif stream shorter than
 * expected") and returns the partial frame; Pillow raises "image file is truncated" there, and a
 * line on stdout would break `--json` output and the LSP stream. So that message becomes a
 * 'corrupt' error and nothing omggif prints reaches stdout. A frame 0 that reaches outside the
 * logical screen is refused as corrupt (Pillow would grow the canvas; omggif would write past rows).
 */

import { corruptError, ImageError } from './errors';
import type { DecodedPixels } from './types';

/** The part of omggif's GifReader we use (the package ships no type declarations). */
interface GifReader {
  readonly width: number;
  readonly height: number;
  numFrames(): number;
  frameInfo(frame: number): {
    readonly x: number;
    readonly y: number;
    readonly width: number;
    readonly height: number;
    readonly palette_offset: number | null;
    readonly palette_size: number | null;
    readonly transparent_index: number | null;
  };
  /** Writes the frame's opaque pixels into `pixels`, [height, width, 4], leaving the rest alone. */
  decodeAndBlitFrameRGBA(frame: number, pixels: Uint8Array): void;
}

// NOTE: a plain require because omggif has no type declarations; esbuild bundles it all the same.
const omggif = require('omggif') as { GifReader: new (buf: Uint8Array) => GifReader };

/**
 * Decodes the first frame of a GIF file into straight-alpha RGBA8.
 * Precondition: the declared size has already passed the decompression-bomb guard.
 * @throws ImageError 'corrupt' when omggif rejects the data or the file has no frame or palette.
 */
export function decodeGif(bytes: Uint8Array, label: string): DecodedPixels {
  let reader: GifReader;
  let data: Uint8Array;
  let info: ReturnType<GifReader['frameInfo']>;
  try {
    reader = new omggif.GifReader(bytes);
    if (reader.numFrames() === 0) throw new Error('the file contains no frame');
    info = reader.frameInfo(0);
    if (info.palette_offset === null) throw new Error('the first frame has no colour table');
    if (info.x + info.width > reader.width || info.y + info.height > reader.height) {
      throw new Error(`frame 0 (${info.width}x${info.height} at ${info.x},${info.y}) reaches outside the ` +
        `${reader.width}x${reader.height} screen`);
    }
    data = new Uint8Array(reader.width * reader.height * 4); // [height, width, 4], alpha 0 = not written.
    const printed = capturingConsoleLog(() => reader.decodeAndBlitFrameRGBA(0, data));
    if (printed.some((line) => /shorter than expected/.test(line))) throw new Error('the image data is truncated');
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw corruptError(label, 'GIF', e);
  }

  // Every pixel omggif left alone shows the fill index: the transparent one, else index 0.
  const transparent = info.transparent_index;
  const fillIndex = transparent ?? 0;
  const fill = paletteColor(bytes, info.palette_offset, info.palette_size ?? 0, fillIndex);
  const fillAlpha = transparent === null ? 255 : 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) {
      data[i] = fill[0];
      data[i + 1] = fill[1];
      data[i + 2] = fill[2];
      data[i + 3] = fillAlpha;
    }
  }
  return { width: reader.width, height: reader.height, channels: 4, data };
}

/** Palette entry `index` as [r, g, b]; indices past the table read as black, as in Pillow. */
function paletteColor(bytes: Uint8Array, offset: number, size: number, index: number): [number, number, number] {
  if (index >= size) return [0, 0, 0];
  const p = offset + index * 3;
  return [bytes[p] ?? 0, bytes[p + 1] ?? 0, bytes[p + 2] ?? 0];
}

/**
 * Runs `f` with console.log collected instead of printed, and returns the lines. `f` is synchronous,
 * so nothing else can log while the swap is in place.
 */
function capturingConsoleLog(f: () => void): string[] {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => { lines.push(args.map(String).join(' ')); };
  try {
    f();
  } finally {
    console.log = original;
  }
  return lines;
}
