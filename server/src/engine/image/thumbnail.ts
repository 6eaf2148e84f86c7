/**
 * A small PNG of an image for hovers and the explain result, made with our own
 * decoder and Pillow-exact bicubic resize and pngjs: transparency
 * composited over white (what the model sees), at most THUMBNAIL_SIDE px on the
 * long side, never enlarged.
 */
import { PNG } from 'pngjs';
import { decodeImage } from './decode';
import { resizeBicubic } from './resize';
import { toRgb } from './rgb';
import type { RgbImage } from './types';

export const THUMBNAIL_SIDE = 160;

export interface Thumbnail {
  /** `data:image/png;base64,...` */
  dataUri: string;
  /** The image's own size. */
  width: number;
  height: number;
}

/**
 * Runs on the calling thread; hover/thumbnail.ts runs it in an image worker.
 * @param name How the image is named in error messages.
 * @throws ImageError when the bytes are not an image we decode.
 */
export async function renderThumbnail(bytes: Uint8Array, name: string, side = THUMBNAIL_SIDE): Promise<Thumbnail> {
  const decoded = await decodeImage(bytes, { name });
  const image: RgbImage = decoded.channels === 3 ? decoded : toRgb(decoded, 'white');
  const scale = Math.min(1, side / Math.max(image.width, image.height));
  const w = Math.max(1, Math.round(image.width * scale));
  const h = Math.max(1, Math.round(image.height * scale));
  const small = resizeBicubic(boxReduce(image, w, h), w, h);
  const png = new PNG({ width: w, height: h });
  for (let i = 0, j = 0; i < w * h * 3; i += 3, j += 4) {
    png.data[j] = small.data[i];
    png.data[j + 1] = small.data[i + 1];
    png.data[j + 2] = small.data[i + 2];
    png.data[j + 3] = 255;
  }
  const encoded = PNG.sync.write(png, { colorType: 2 });
  return { dataUri: `data:image/png;base64,${encoded.toString('base64')}`, width: image.width, height: image.height };
}

/**
 * Averages k x k blocks so that the bicubic pass that follows reads at most about twice
 * the target size (a bicubic filter's taps grow with the scale factor: a 4000-px
 * screenshot would cost ~100 taps per output pixel). Returns `image` when k would be 1.
 */
function boxReduce(image: RgbImage, w: number, h: number): RgbImage {
  const k = Math.floor(Math.min(image.width / w, image.height / h) / 2);
  if (k <= 1) return image;
  const ow = Math.floor(image.width / k), oh = Math.floor(image.height / k);
  const out = new Uint8Array(ow * oh * 3);
  const src = image.data;
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let dy = 0; dy < k; dy++) {
          let p = ((y * k + dy) * image.width + x * k) * 3 + c;
          for (let dx = 0; dx < k; dx++, p += 3) sum += src[p];
        }
        out[(y * ow + x) * 3 + c] = Math.round(sum / (k * k));
      }
    }
  }
  return { width: ow, height: oh, data: out };
}
