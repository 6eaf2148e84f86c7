/**
 * Errors raised while reading or preparing an image. Every message names the image (its path, or
 * "image" when the caller gave none), says what is wrong, and says what the user can do about it.
 */

export type ImageErrorCode =
  /** The bytes are not in any image format we know (HTML, text, a Git LFS pointer, ...). */
  | 'not-an-image'
  /** The bytes are an image, but in a format we do not decode (BMP, TIFF, HEIC, SVG, ...). */
  | 'unsupported-format'
  /** The format was recognised but the data is truncated or damaged. */
  | 'corrupt'
  /** The file has no bytes, or the image has no pixels. */
  | 'empty'
  /** One side is more than 200 times the other; Qwen2-VL's smart_resize rejects it. */
  | 'aspect-ratio'
  /** The declared size exceeds the decompression-bomb limit, checked before decoding pixels. */
  | 'too-large'
  /** Decoding ran past its time budget and was stopped (engine/image/isolate.ts). */
  | 'timeout';

export class ImageError extends Error {
  override readonly name = 'ImageError';

  /**
   * @param code Stable machine-readable reason.
   * @param message Whole sentences ending with what the user should do.
   * @param source The path or label of the image, when the caller gave one.
   */
  constructor(
    readonly code: ImageErrorCode,
    message: string,
    readonly source?: string,
  ) {
    super(message);
  }
}

/** The label used at the start of messages when the caller did not name the image. */
export const DEFAULT_IMAGE_LABEL = 'image';

/**
 * Renders the first `n` bytes for a message: printable ASCII as itself, anything else as `\xNN`.
 * For example an HTML page gives `<htm` and a ZIP file gives `PK\x03\x04`.
 */
export function leadingBytesText(bytes: Uint8Array, n = 4): string {
  let text = '';
  for (let i = 0; i < Math.min(n, bytes.length); i++) {
    const b = bytes[i]!;
    text += b >= 0x20 && b < 0x7f && b !== 0x27 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return text;
}

/** Wraps any exception a third-party decoder throws into a 'corrupt' ImageError. */
export function corruptError(label: string, formatName: string, cause: unknown): ImageError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new ImageError(
    'corrupt',
    `${label} looks like a ${formatName} image but could not be decoded (${detail}). ` +
      'The file may be truncated or damaged; open it in an image viewer and re-export it.',
    label,
  );
}
