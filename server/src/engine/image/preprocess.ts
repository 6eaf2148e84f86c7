/**
 * The image processor on the host: bytes -> the resized uint8 RGB image and `image_grid_thw`,
 * bit-identical to transformers 5.17 `Qwen2VLImageProcessorPil` given the same decoded pixels
 * (every decoder is bit-identical to Pillow, see decode.ts). Qwen2.5-VL uses the same processor.
 *
 *   decode (decode.ts) -> RGB (rgb.ts, alpha dropped like Pillow's convert("RGB"))
 *   -> smart_resize (smart-resize.ts) -> Pillow BICUBIC unless the size is unchanged (resize.ts)
 * preprocessImage drops alpha inside the resize (which reads RGBA rows as RGB) rather than in a pass
 * of its own, and resizes large images on several threads (resize-threads.ts); both are
 * byte-identical to the steps above.
 *
 * The rest of the processor (rescale + normalise, repeat to T frames, 2x2-block patch order) runs
 * in the vision graph (kernels/graphs/vision.ts `inGraphPixelValues`): the host never builds the float32
 * `pixel_values` (43 MB for a 1344^2 image). patches.ts `toPixelValues` is the host reference of
 * that step, which tests compare with transformers and with the graph.
 */

import type { PreprocessConfig } from '../config';
import { decodeImage } from './decode';
import { DEFAULT_IMAGE_LABEL, ImageError } from './errors';
import { resizeBicubic, type ResizeSource } from './resize';
import { resizeBicubicParallel } from './resize-threads';
import { type AlphaHandling, isOpaque, toRgb } from './rgb';
import { planSmartResize, type ResizePlan } from './smart-resize';
import type { RgbImage } from './types';

export interface PreprocessOptions {
  /** How the image is named in error messages, typically its workspace-relative path. */
  readonly name?: string;
  /**
   * A lower pixel budget than the model's `max_pixels`, from the user's settings. Values above
   * `cfg.maxPixels` are ignored: the model's own limit always applies.
   */
  readonly maxPixelsOverride?: number;
  /** Decompression-bomb limit on the declared size, see DecodeOptions.maxPixels. */
  readonly maxDecodedPixels?: number;
  /** 'drop' (default) matches Hugging Face; 'white' composites transparency over white. */
  readonly alpha?: AlphaHandling;
}

export interface PreprocessedImage {
  /**
   * The resized image the vision graph takes, [resizedHeight, resizedWidth, 3] uint8; `pixel_values`
   * is patches.ts `toPixelValues(resized, cfg, cfg)`.
   */
  readonly resized: RgbImage;
  /** `image_grid_thw` of this image: [1, resizedHeight / P, resizedWidth / P]. */
  readonly gridThw: [number, number, number];
  readonly resizedWidth: number;
  readonly resizedHeight: number;
  readonly originalWidth: number;
  readonly originalHeight: number;
  /** True when the pixel budget (max_pixels, or the override) shrank the image below its natural size. */
  readonly downscaled: boolean;
}

/**
 * Decodes and preprocesses one image for the vision tower, on the calling thread (isolate.ts runs it
 * in a worker with a time budget). The resized pixels go into the start of `into` when it is large
 * enough (a kept buffer, pixel-buffers.ts), else into a new buffer.
 * @throws ImageError 'empty', 'not-an-image', 'unsupported-format', 'too-large', 'corrupt' (decoding)
 *   or 'aspect-ratio' (smart_resize).
 */
export async function preprocessImage(
  bytes: Uint8Array,
  cfg: PreprocessConfig,
  options: PreprocessOptions = {},
  into?: ArrayBuffer,
): Promise<PreprocessedImage> {
  const decoded = await decodeImage(bytes, { name: options.name, maxPixels: options.maxDecodedPixels, keepOpaqueAlpha: true });
  // Dropping alpha is the resize's own job; compositing is needed only where some pixel is not opaque
  // (over an opaque pixel it gives the RGB samples as they are).
  const pixels: ResizeSource = decoded.channels === 3 || (options.alpha ?? 'drop') === 'drop' || isOpaque(decoded.data)
    ? decoded : toRgb(decoded, options.alpha);
  const plan = planResize(pixels, cfg, options);
  // NOTE: an image already at its target size still comes back as a copy (resizeBicubic's early return):
  // the decoded pixels may be sharp's external memory, which the worker cannot transfer to the calling
  // thread (Node 22+ ends the worker), while the copy is an ordinary transferable buffer (`into`, when
  // the caller passed one large enough: pixel-buffers.ts).
  return preprocessed(pixels, cfg, plan, await resizeBicubicParallel(pixels, plan.width, plan.height, undefined, { into }));
}

/**
 * The processor from RGB pixels on, on the calling thread (for callers that decoded the image
 * themselves, and tests).
 * @throws ImageError 'empty' or 'aspect-ratio' (smart_resize).
 */
export function preprocessRgb(
  image: RgbImage,
  cfg: PreprocessConfig,
  options: Pick<PreprocessOptions, 'name' | 'maxPixelsOverride'> = {},
): PreprocessedImage {
  const plan = planResize(image, cfg, options);
  return preprocessed(image, cfg, plan, resizeBicubic(image, plan.width, plan.height));
}

/** smart_resize of `image` under the model's (or the user's lower) pixel budget, naming the image in errors. */
function planResize(image: ResizeSource, cfg: PreprocessConfig, options: Pick<PreprocessOptions, 'name' | 'maxPixelsOverride'>): ResizePlan {
  const label = options.name ?? DEFAULT_IMAGE_LABEL;
  const factor = cfg.patchSize * cfg.mergeSize;
  const maxPixels = effectiveMaxPixels(cfg.maxPixels, options.maxPixelsOverride);
  try {
    return planSmartResize(image.height, image.width, factor, cfg.minPixels, maxPixels);
  } catch (e) {
    // smart_resize knows the size but not the name; put the name in front.
    if (e instanceof ImageError) throw new ImageError(e.code, `${label}: ${e.message}`, label);
    throw e;
  }
}

function preprocessed(image: ResizeSource, cfg: PreprocessConfig, plan: ResizePlan, resized: RgbImage): PreprocessedImage {
  return {
    resized,
    gridThw: [1, plan.height / cfg.patchSize, plan.width / cfg.patchSize],
    resizedWidth: plan.width,
    resizedHeight: plan.height,
    originalWidth: image.width,
    originalHeight: image.height,
    downscaled: plan.rule === 'max-pixels',
  };
}

/**
 * The model's max_pixels, lowered by the user's override when that is smaller.
 * @throws RangeError when the override is not a positive finite number.
 */
export function effectiveMaxPixels(modelMaxPixels: number, override: number | undefined): number {
  if (override === undefined) return modelMaxPixels;
  if (!Number.isFinite(override) || override <= 0) {
    throw new RangeError(`maxPixelsOverride must be a positive number of pixels, got ${override}`);
  }
  return Math.min(modelMaxPixels, Math.floor(override));
}
