/**
 * Pixel buffers passed between the image stages. Both are row-major and interleaved, with no
 * padding between rows, so the sample for channel `c` of pixel `(x, y)` is at
 * `data[(y * width + x) * nChannels + c]`.
 */

/** A decoded image with straight (not premultiplied) alpha. `data` is `[height, width, 4]` uint8. */
export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** An opaque image. `data` is `[height, width, 3]` uint8. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** A decoded image: RGB when the file has no transparency, else straight-alpha RGBA. `data` is `[height, width, channels]` uint8. */
export interface DecodedPixels {
  readonly width: number;
  readonly height: number;
  readonly channels: 3 | 4;
  readonly data: Uint8Array;
}

/** The container formats we decode, named after their usual file extension. */
export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp';

/** Human-readable names used in messages, e.g. "a PNG image". */
export const FORMAT_LABELS: Readonly<Record<ImageFormat, string>> = {
  png: 'PNG',
  jpeg: 'JPEG',
  gif: 'GIF',
  webp: 'WebP',
};

/**
 * Pillow refuses to open images above this many pixels (`Image.MAX_IMAGE_PIXELS * 2`, where
 * MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3), raising DecompressionBombError. We use the same
 * default so that any image Hugging Face can read, we can read too. At 4 bytes per pixel the RGBA
 * buffer of the largest accepted image is about 716 MB.
 */
export const DEFAULT_MAX_DECODED_PIXELS = 178_956_970;

/**
 * Refuse a file whose decode would allocate more than this many bytes of pixels (canvas and every
 * frame buffer the decoder allocates, summed), checked before anything is allocated. An image at
 * Pillow's pixel limit needs 716 MB as RGBA; this leaves room for the frame of an animation.
 */
export const DEFAULT_MAX_DECODED_BYTES = 1024 * 1024 * 1024;
