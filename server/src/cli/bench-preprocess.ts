/**
 * `vlcache bench --preprocess`: image preprocessing time per image size, with no model and no GPU.
 * The images are made here (deterministic) and encoded with sharp:
 *   1344x1344 PNG  photo-like RGB (a 1344² image needs no resize with the default pixel budget)
 *   1344x1344 JPEG the same photo, quality 90, 4:2:0
 *   3840x2160 PNG  a screenshot: flat panels and text-like strokes, RGBA with opaque alpha (as
 *                  screenshot tools save it); smart_resize makes it 3836x2156
 * Stages, each the median of `runs` after one warm-up, as preprocessImage runs them: decode
 * (sharp/pngjs/omggif; RGBA stays RGBA), rgb (compositing over white, only where some pixel is not
 * opaque: the bench uses alpha 'white'), resize (Pillow-exact bicubic on `resizeThreads().size`
 * threads for images above PARALLEL_MIN_PIXELS, RGBA read as RGB; also timed on one thread),
 * patchify (rescale, normalise, patch order: the first ops of the vision graph, run here alone in
 * ONNX Runtime on the CPU, kernels/graphs/vision.ts `buildPatchifyGraph`); then `worker`: decode +
 * rgb + resize in the image worker pool, as an ask runs it (includes copying the bytes in and moving
 * the resized RGB out, into a kept buffer as in an ask: pixel-buffers.ts).
 */
import { availableParallelism } from 'node:os';

import { buildPatchifyGraph } from '../../../kernels/graphs/vision';
import type { PreprocessConfig } from '../engine/config';
import { decodeImage } from '../engine/image/decode';
import { imageWorkers } from '../engine/image/isolate';
import { resizeBicubic, type ResizeSource } from '../engine/image/resize';
import { PARALLEL_MIN_PIXELS, resizeBicubicParallel, resizeThreads, threadsFor } from '../engine/image/resize-threads';
import { isOpaque, toRgb } from '../engine/image/rgb';
import { planSmartResize } from '../engine/image/smart-resize';
import { Session, f32, u8 } from '../engine/ort';
import { graphNormalization } from '../engine/vision-inputs';

/** Qwen2-VL / Qwen2.5-VL preprocessor_config.json defaults (what the released checkpoints ship). */
export const QWEN2VL_PREPROCESS: PreprocessConfig = {
  minPixels: 56 * 56, maxPixels: 28 * 28 * 16384, patchSize: 14, temporalPatchSize: 2, mergeSize: 2,
  imageMean: [0.48145466, 0.4578275, 0.40821073], imageStd: [0.26862954, 0.26130258, 0.27577711], rescaleFactor: 1 / 255,
};

export interface PreprocessRow {
  image: string;
  resized: string;
  decode_ms: number;
  rgb_ms: number;
  resize_ms: number;
  /** Threads the resize ran on (1 below PARALLEL_MIN_PIXELS). */
  resize_threads: number;
  resize_1thread_ms: number;
  patchify_ms: number;
  total_ms: number;
  worker_ms: number;
}

interface BenchImage { name: string; bytes: Uint8Array }

/** Times preprocessing of the three images; `runs` measurements each after a warm-up. */
export async function benchPreprocess(runs: number, cfg: PreprocessConfig = QWEN2VL_PREPROCESS): Promise<PreprocessRow[]> {
  const rows: PreprocessRow[] = [];
  const geometry = { inChannels: 3, patchSize: cfg.patchSize, temporalPatchSize: cfg.temporalPatchSize, spatialMergeSize: cfg.mergeSize };
  const patchify = await Session.create(buildPatchifyGraph(geometry, true), 'cpu');
  const norm = graphNormalization(cfg);
  for (const img of await benchImages()) {
    const samples: Omit<PreprocessRow, 'image' | 'resized' | 'resize_threads'>[] = [];
    let resized = '';
    let threads = 1;
    for (let i = 0; i <= runs; i++) {
      const t0 = performance.now();
      const decoded = await decodeImage(img.bytes, { name: img.name, keepOpaqueAlpha: true });
      const t1 = performance.now();
      const rgb: ResizeSource = decoded.channels === 3 || isOpaque(decoded.data) ? decoded : toRgb(decoded, 'white');
      const t2 = performance.now();
      const plan = planSmartResize(rgb.height, rgb.width, cfg.patchSize * cfg.mergeSize, cfg.minPixels, cfg.maxPixels);
      const small = await resizeBicubicParallel(rgb, plan.width, plan.height);
      const t3 = performance.now();
      resizeBicubic(rgb, plan.width, plan.height);
      const resize1 = performance.now() - t3;
      threads = threadsFor(rgb, plan.width, plan.height);
      const t3b = performance.now();
      await patchify.run({
        pixels: u8(small.data, [small.height, small.width, 3]), rescale_divisor: f32(norm.divisor, [1, 1, 1, 1]),
        image_mean: f32(norm.mean, [1, 3, 1, 1]), image_std: f32(norm.std, [1, 3, 1, 1]),
      });
      const t4 = performance.now();
      const p = await imageWorkers().preprocess(img.bytes, cfg, { name: img.name, alpha: 'white' });
      const t5 = performance.now();
      imageWorkers().recycle(p.resized); // as an ask does once the vision encoder has read the pixels
      resized = `${plan.width}x${plan.height}`;
      if (i > 0) {
        samples.push({ decode_ms: t1 - t0, rgb_ms: t2 - t1, resize_ms: t3 - t2, resize_1thread_ms: resize1, patchify_ms: t4 - t3b,
          total_ms: t3 - t0 + (t4 - t3b), worker_ms: t5 - t4 });
      }
    }
    const med = (k: keyof (typeof samples)[number]) => {
      const v = samples.map((s) => s[k]).sort((a, b) => a - b);
      return Math.round(v[(v.length - 1) >> 1] * 10) / 10;
    };
    rows.push({ image: img.name, resized, decode_ms: med('decode_ms'), rgb_ms: med('rgb_ms'), resize_ms: med('resize_ms'),
      resize_threads: threads, resize_1thread_ms: med('resize_1thread_ms'), patchify_ms: med('patchify_ms'), total_ms: med('total_ms'),
      worker_ms: med('worker_ms') });
  }
  await patchify.dispose();
  return rows;
}

/** The rows as a Markdown table, and the threads the resize may use. */
export function preprocessTable(rows: readonly PreprocessRow[]): string {
  const lines = [
    `Resize threads: ${resizeThreads().size} (${availableParallelism()} cores; images of ${PARALLEL_MIN_PIXELS / 1e6} M pixels or more)`,
    '| image | resized to | decode ms | rgb ms | resize ms (threads) | resize, 1 thread ms | patchify ms | total ms | in worker ms |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.image} | ${r.resized} | ${r.decode_ms} | ${r.rgb_ms} | ${r.resize_ms} (${r.resize_threads}) | ${r.resize_1thread_ms} | ` +
      `${r.patchify_ms} | ${r.total_ms} | ${r.worker_ms} |`);
  }
  return lines.join('\n');
}

async function benchImages(): Promise<BenchImage[]> {
  const sharp = require('sharp') as typeof import('sharp');
  const photo = photoPixels(1344, 1344);
  const raw = (data: Uint8Array, width: number, height: number, channels: 3 | 4) => sharp(data, { raw: { width, height, channels } });
  const shot = screenshotPixels(3840, 2160);
  return [
    { name: 'photo 1344x1344 PNG', bytes: new Uint8Array(await raw(photo, 1344, 1344, 3).png().toBuffer()) },
    { name: 'photo 1344x1344 JPEG', bytes: new Uint8Array(await raw(photo, 1344, 1344, 3).jpeg({ quality: 90 }).toBuffer()) },
    { name: 'screenshot 3840x2160 RGBA PNG', bytes: new Uint8Array(await raw(shot, 3840, 2160, 4).png().toBuffer()) },
  ];
}

/** Smooth colour waves with a little deterministic noise, [h, w, 3]. */
function photoPixels(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  let seed = 12345;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const n = ((seed >>> 16) % 17) - 8;
      const p = (y * w + x) * 3;
      out[p] = clamp(128 + 100 * Math.sin(x / 37) * Math.cos(y / 53) + n);
      out[p + 1] = clamp(128 + 90 * Math.sin((x + y) / 71) + n);
      out[p + 2] = clamp(128 + 80 * Math.cos(x / 29 - y / 41) + n);
    }
  }
  return out;
}

/** A light window with a dark side bar, panels and rows of text-like strokes, opaque RGBA [h, w, 4]. */
function screenshotPixels(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = (y * w + x) * 4;
      let c: [number, number, number] = [245, 246, 248];
      if (x < 300) c = [40, 44, 52];
      else if (y < 60) c = [225, 228, 232];
      else if (x > 620 && x < 3380 && y > 320 && y < 1780) c = [255, 255, 255];
      const row = Math.floor(y / 28), inText = y % 28 > 8 && y % 28 < 20;
      if (inText && x > 340 && x < 340 + ((row * 7919) % 2400) && ((x * 13 + row * 7) % 11) < 6) c = [30, 30, 30];
      out.set(c, p);
      out[p + 3] = 255;
    }
  }
  return out;
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}
