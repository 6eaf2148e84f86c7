/**
 * Calibration of a layer-aware VLCache schedule (DESIGN.md section 4): per decoder layer,
 * how much it matters that a reused image's rows are recomputed there.
 *
 * For l = 0..L, s[l] is the mean first-token KL vs full recomputation (over the sample
 * images and the fidelity harness's variants, each placing the image after a different
 * prefix than the one its KV was cached under) when every reused row of the image is
 * computed through layers < l and reused (its cached K/V given) from layer l on: the
 * schedule of l ones then L - l zeros. s[0] is naive reuse, s[L] is full. A large drop
 * s[l] - s[l+1] says computing layer l matters. `allocateRatios` turns s into ratios.
 */
import { ImageInput, Generator } from '../ask/generate';
import { FidelityRow, ModeSpec, defaultVariants, runFidelity } from './fidelity';

/** The schedule that computes reused rows through layers < l and reuses them from layer l on. */
export const exitSchedule = (l: number, numLayers: number): number[] =>
  Array.from({ length: numLayers }, (_, j) => (j < l ? 1 : 0));

export interface CalibrationOptions {
  /** Sample images (at least one); each is placed after the others' variants in turn. */
  readonly images: readonly ImageInput[];
  /** A second image for the "another image first" variant of a single sample. */
  readonly other: ImageInput;
  readonly numLayers: number;
  /** A generator with an empty cache on a model loaded layered, made fresh for every run. */
  readonly newGenerator: () => Generator;
  readonly onRow?: (row: FidelityRow, layer: number) => void;
}

/** s[0..L]: mean first-token KL (nats) vs full when reuse starts at layer l. */
export async function measureSensitivity(o: CalibrationOptions): Promise<number[]> {
  const L = o.numLayers;
  const modes: ModeSpec[] = Array.from({ length: L + 1 }, (_, l) => ({ label: `reuse from layer ${l}`, mode: 'vlcache', schedule: exitSchedule(l, L) }));
  const sums = new Array<number>(L + 1).fill(0);
  let runs = 0;
  for (let i = 0; i < o.images.length; i++) {
    const other = o.images.length > 1 ? o.images[(i + 1) % o.images.length] : o.other;
    const rows = await runFidelity({
      image: o.images[i], variants: defaultVariants(other), modes, tokens: 1, newGenerator: o.newGenerator,
      onRow: (r) => o.onRow?.(r, modes.findIndex((m) => m.label === r.mode)),
    });
    for (const r of rows) sums[modes.findIndex((m) => m.label === r.mode)] += r.first_token_kl;
    runs += rows.length / modes.length;
  }
  return sums.map((s) => s / runs);
}
