/**
 * WebP decoding through @jsquash/webp: libwebp compiled to WebAssembly, shipped inside the npm
 * package, so it runs offline and needs no native build. This file is its only importer.
 *
 * Pillow decodes every WebP file through libwebp's WebPAnimDecoder in RGBA mode
 * (src/_webp.c): for a still image that is exactly WebPDecodeRGBA, which is what jsquash calls,
 * so lossy and lossless pixels agree bit for bit (checked against Pillow 9.4 / libwebp 1.2.4
 * while writing this; jsquash 1.5.0 embeds libwebp 1.1.0, and libwebp's decoder output has not
 * changed between the two). For an animated file Pillow shows frame 0 composited onto a canvas
 * cleared to transparent black; jsquash's decoder rejects animations, so we cut frame 0 out of
 * its ANMF chunk, decode it as a still image, and place it on such a canvas ourselves.
 * Files without the alpha flag open in Pillow as RGB, so we force alpha to 255 for them.
 *
 * NOTE: the WebAssembly module is read from node_modules at first use (see loadCodec), so
 * @jsquash/webp must be installed next to the bundle at run time, like onnxruntime-node.
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import { corruptError, ImageError } from './errors';
import { readU24LE } from './format';
import type { RgbaImage } from './types';

/** The part of jsquash's Emscripten module that we call; `decode` returns null on bad data. */
interface WebpCodec {
  decode(file: Uint8Array): { width: number; height: number; data: Uint8ClampedArray } | null;
}

/** Emscripten module options: we instantiate the WebAssembly ourselves, synchronously. */
interface CodecOptions {
  noInitialRun: boolean;
  instantiateWasm(imports: unknown, done: (instance: unknown) => void): unknown;
}

/** The global WebAssembly object; neither lib ES2022 nor @types/node 20 declare it. */
const wasmApi = (
  globalThis as unknown as {
    WebAssembly: {
      Module: new (bytes: Uint8Array) => unknown;
      Instance: new (module: unknown, imports: unknown) => { exports: unknown };
    };
  }
).WebAssembly;

let codec: WebpCodec | undefined;

/**
 * Loads the codec once per process, synchronously. jsquash's own `decode()` wrapper is async only
 * because it awaits instantiation; Emscripten runs the module's start-up within the factory call
 * when `instantiateWasm` answers synchronously, and then attaches `decode` to the options object.
 * The glue is a plain `require` so that esbuild bundles it; the .wasm file is located at run time
 * (createRequire keeps esbuild from trying to bundle it).
 */
function loadCodec(): WebpCodec {
  if (codec !== undefined) return codec;
  const factory = (require('@jsquash/webp/codec/dec/webp_dec.js') as { default: (o: CodecOptions) => unknown }).default;
  const wasmPath = createRequire(__filename).resolve('@jsquash/webp/codec/dec/webp_dec.wasm');
  const wasmModule = new wasmApi.Module(readFileSync(wasmPath));
  const options: CodecOptions = {
    noInitialRun: true,
    instantiateWasm(imports, done) {
      const instance = new wasmApi.Instance(wasmModule, imports);
      done(instance);
      return instance.exports;
    },
  };
  // The returned promise resolves to `options` itself; a failure shows up as a missing `decode`.
  Promise.resolve(factory(options)).catch(() => undefined);
  const loaded = options as unknown as Partial<WebpCodec>;
  if (typeof loaded.decode !== 'function') {
    throw new Error('the WebP codec (@jsquash/webp) did not initialise synchronously');
  }
  codec = loaded as WebpCodec;
  return codec;
}

/** VP8X feature flags (first payload byte). */
const FLAG_ANIMATION = 0x02;
const FLAG_ALPHA = 0x10;

/**
 * Decodes a WebP file (frame 0 of an animation) into straight-alpha RGBA8.
 * Precondition: the declared size has already passed the decompression-bomb guard.
 * @throws ImageError 'corrupt' when libwebp rejects the data; Error when the codec cannot be loaded.
 */
export function decodeWebp(bytes: Uint8Array, label: string): RgbaImage {
  const isExtended = chunkFourcc(bytes, 12) === 'VP8X';
  const flags = isExtended ? bytes[20]! : 0;
  let webp: WebpCodec;
  try {
    webp = loadCodec();
  } catch (e) {
    // Not the image's fault: the package is missing or broken in this installation.
    const detail = e instanceof Error ? e.message : String(e);
    throw new Error(`WebP support is unavailable (${detail}); reinstall the extension or convert ${label} to PNG.`);
  }
  let image: RgbaImage;
  try {
    image = flags & FLAG_ANIMATION ? decodeFirstFrame(bytes, webp) : decodeStill(bytes, webp);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw corruptError(label, 'WebP', e);
  }
  if (isExtended && !(flags & FLAG_ALPHA)) {
    for (let i = 3; i < image.data.length; i += 4) image.data[i] = 255;
  }
  return image;
}

function decodeStill(file: Uint8Array, webp: WebpCodec): RgbaImage {
  const out = webp.decode(file);
  if (out === null) throw new Error('libwebp rejected the data');
  return { width: out.width, height: out.height, data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length) };
}

/**
 * Frame 0 of an animated WebP on a canvas of the declared size, cleared to (0, 0, 0, 0), as
 * libwebp's WebPAnimDecoder produces it (the first frame is a key frame, so no blending).
 */
function decodeFirstFrame(file: Uint8Array, webp: WebpCodec): RgbaImage {
  const canvasWidth = readU24LE(file, 24) + 1;
  const canvasHeight = readU24LE(file, 27) + 1;
  const anmf = findChunk(file, 'ANMF');
  if (anmf === undefined) throw new Error('the animation has no frame');
  // ANMF payload: x/2, y/2, width-1, height-1, duration (24-bit each), flags (1 byte), then the
  // frame's own chunks (optional ALPH, then VP8 or VP8L).
  const x0 = readU24LE(file, anmf.start) * 2;
  const y0 = readU24LE(file, anmf.start + 3) * 2;
  const frameWidth = readU24LE(file, anmf.start + 6) + 1;
  const frameHeight = readU24LE(file, anmf.start + 9) + 1;
  const frameChunks = file.subarray(anmf.start + 16, anmf.end);
  const frame = decodeStill(wrapFrame(frameChunks, frameWidth, frameHeight), webp);

  const data = new Uint8Array(canvasWidth * canvasHeight * 4); // [canvasHeight, canvasWidth, 4]
  const nCols = Math.min(frame.width, canvasWidth - x0);
  for (let y = 0; y < frame.height && y0 + y < canvasHeight; y++) {
    if (nCols <= 0) break;
    const src = frame.data.subarray(y * frame.width * 4, (y * frame.width + nCols) * 4);
    data.set(src, ((y0 + y) * canvasWidth + x0) * 4);
  }
  return { width: canvasWidth, height: canvasHeight, data };
}

/**
 * Builds a standalone still WebP file from an animation frame's chunks. A frame with an ALPH chunk
 * needs the extended (VP8X) container with the alpha flag; a plain VP8 or VP8L frame does not.
 */
function wrapFrame(chunks: Uint8Array, width: number, height: number): Uint8Array {
  const hasAlph = chunkFourcc(chunks, 0) === 'ALPH';
  const vp8x = new Uint8Array(18);
  if (hasAlph) {
    vp8x.set([0x56, 0x50, 0x38, 0x58, 10, 0, 0, 0, FLAG_ALPHA]); // "VP8X", payload size 10, flags.
    writeU24LE(vp8x, 12, width - 1);
    writeU24LE(vp8x, 15, height - 1);
  }
  const header = hasAlph ? vp8x : new Uint8Array(0);
  const out = new Uint8Array(12 + header.length + chunks.length);
  out.set([0x52, 0x49, 0x46, 0x46]); // "RIFF"
  new DataView(out.buffer).setUint32(4, out.length - 8, true);
  out.set([0x57, 0x45, 0x42, 0x50], 8); // "WEBP"
  out.set(header, 12);
  out.set(chunks, 12 + header.length);
  return out;
}

/** Payload range [start, end) of the first top-level chunk named `fourcc`, after "RIFF....WEBP". */
function findChunk(file: Uint8Array, fourcc: string): { start: number; end: number } | undefined {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let p = 12;
  while (p + 8 <= file.length) {
    const size = view.getUint32(p + 4, true);
    if (chunkFourcc(file, p) === fourcc) return { start: p + 8, end: Math.min(p + 8 + size, file.length) };
    p += 8 + size + (size & 1); // Chunks are padded to an even size.
  }
  return undefined;
}

function chunkFourcc(b: Uint8Array, p: number): string {
  return String.fromCharCode(...b.subarray(p, p + 4));
}

function writeU24LE(b: Uint8Array, p: number, v: number): void {
  b[p] = v & 0xff;
  b[p + 1] = (v >> 8) & 0xff;
  b[p + 2] = (v >> 16) & 0xff;
}
