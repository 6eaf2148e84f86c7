/**
 * Public surface of the image pipeline. Other engine modules import from here, not from the
 * individual files.
 */

export { decodeImage, type DecodedImage, type DecodeOptions } from './decode';
export { ImageError, type ImageErrorCode } from './errors';
export { normalizationTable, toPixelValues, type Normalization, type PatchLayout } from './patches';
export {
  effectiveMaxPixels,
  preprocessImage,
  preprocessRgb,
  type PreprocessedImage,
  type PreprocessOptions,
} from './preprocess';
export { resizeBicubic } from './resize';
export { compositeOverWhite, dropAlpha, toRgb, type AlphaHandling } from './rgb';
export { visionRotaryPositions, type RotaryPositions } from './rotary-positions';
export {
  MAX_ASPECT_RATIO,
  planSmartResize,
  roundHalfEven,
  smartResize,
  type ResizePlan,
  type ResizeRule,
} from './smart-resize';
export { DEFAULT_MAX_DECODED_PIXELS, type ImageFormat, type RgbaImage, type RgbImage } from './types';
export { windowIndex, windowOrder, type WindowOrder } from './window-index';
