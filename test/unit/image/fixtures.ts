/**
 * Access to the files in ./fixtures, made by fixtures/make-fixtures.py from Pillow. Expected
 * images are read with pngjs directly, not through the decoder under test.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { PNG } from 'pngjs';

import type { RgbImage } from '../../../server/src/engine/image/types';

const DIR = join(__dirname, 'fixtures');

export interface Manifest {
  readonly pillow: string;
  readonly resize: readonly { input: string; width: number; height: number; expected: string }[];
  readonly decode: readonly { file: string; drop: string; white?: string }[];
  readonly pipeline: readonly {
    file: string;
    maxPixelsOverride: number | null;
    gridThw: [number, number, number];
    resizedWidth: number;
    resizedHeight: number;
    sha256: string;
    samples: [number, number, number][];
  }[];
}

export const manifest: Manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8'));

export function fixtureBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(DIR, name)));
}

/** An 8-bit RGB or RGBA PNG written by Pillow, as RGB [height, width, 3]. */
export function fixtureRgb(name: string): RgbImage {
  const png = PNG.sync.read(readFileSync(join(DIR, name)));
  const data = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; j < data.length; i += 4, j += 3) {
    data[j] = png.data[i]!;
    data[j + 1] = png.data[i + 1]!;
    data[j + 2] = png.data[i + 2]!;
  }
  return { width: png.width, height: png.height, data };
}

/** Index and values of the first differing byte, for assertion messages. */
export function firstDifference(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `lengths differ: ${a.length} vs ${b.length}`;
  const i = a.findIndex((v, k) => v !== b[k]);
  return i < 0 ? 'identical' : `byte ${i}: ${a[i]} vs ${b[i]}`;
}
