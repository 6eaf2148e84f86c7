/**
 * Layer-aware VLCache schedules (DESIGN.md section 4, research/vlcache.md 3.3): per
 * decoder layer, the fraction of each reused image's leading rows recomputed at that
 * layer. Ratios are non-increasing with depth, so a row whose hidden state stopped
 * being computed never needs fresh K/V deeper down (the computed row sets are nested).
 *
 * A schedule is written per model by `vlcache calibrate` to
 * `<cache root>/schedules/<fingerprint16>.json`; without one, VLCache uses its uniform r.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheRoot } from '../engine/graph-files';
import { readRegularText } from '../engine/regular-file';

export interface LayerSchedule {
  /** Per decoder layer, non-increasing with depth, each in [0, 1]. */
  readonly ratios: readonly number[];
  /** How it was made (e.g. "calibrate: 2 images x 5 variants, budget 0.05"). */
  readonly source: string;
  /** ISO time of creation. */
  readonly created: string;
  /** Fingerprint of the model it was calibrated on. */
  readonly model: string;
  /** Optional calibration data: per-layer sensitivity s_0..s_L (first-token KL, nats). */
  readonly sensitivity?: readonly number[];
  readonly budget?: number;
}

/** Why `ratios` is not a valid schedule for `numLayers` layers, or undefined when it is. */
export function scheduleError(ratios: unknown, numLayers?: number): string | undefined {
  if (!Array.isArray(ratios) || ratios.length === 0) return 'ratios must be a non-empty array';
  if (numLayers !== undefined && ratios.length !== numLayers) return `${ratios.length} ratios for a model of ${numLayers} layers`;
  for (let i = 0; i < ratios.length; i++) {
    const r = ratios[i];
    if (typeof r !== 'number' || !Number.isFinite(r) || r < 0 || r > 1) return `ratio ${i} (${r}) is not in [0, 1]`;
    if (i > 0 && r > ratios[i - 1]) return `ratios must not increase with depth: layer ${i} has ${r} > ${ratios[i - 1]}`;
  }
  return undefined;
}

/** The same ratio at every layer (today's VLCache). */
export const uniformRatios = (r: number, numLayers: number): number[] => Array.from({ length: numLayers }, () => r);

export function schedulePath(fingerprint: string, root = cacheRoot()): string {
  return join(root, 'schedules', `${fingerprint.slice(0, 16)}.json`);
}

/** Writes a schedule (validated) to its file: a temp file renamed over, so readers never see half a file. */
export function saveSchedule(s: LayerSchedule, root?: string): string {
  const err = scheduleError(s.ratios);
  if (err) throw new Error(`invalid schedule: ${err}`);
  const path = schedulePath(s.model, root);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, JSON.stringify(s, null, 1) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
  return path;
}

/**
 * The model's schedule, or undefined when there is none. A malformed file, or one for
 * another model or layer count, is ignored with one log line (uniform r then applies).
 */
export function loadSchedule(fingerprint: string, numLayers: number, log: (line: string) => void = () => {},
  root?: string): LayerSchedule | undefined {
  const path = schedulePath(fingerprint, root);
  let text: string;
  try {
    // A regular file of sane size only: a FIFO or device in its place must not hang a model load.
    text = readRegularText(path, { maxBytes: 2 ** 20 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      log(`vlcache: ignoring the layer schedule ${path} (${(e as Error).message}); using the uniform ratio`);
    }
    return undefined;
  }
  try {
    const s = JSON.parse(text) as LayerSchedule;
    if (typeof s !== 'object' || s === null) throw new Error('not an object');
    if (s.model !== fingerprint) throw new Error('it was calibrated on another model');
    const err = scheduleError(s.ratios, numLayers);
    if (err) throw new Error(err);
    return s;
  } catch (e) {
    log(`vlcache: ignoring the layer schedule ${path} (${(e as Error).message}); using the uniform ratio`);
    return undefined;
  }
}

/**
 * Spreads a recompute budget over layers from measured sensitivities. The rule:
 *
 * - `s[l]` (l = 0..L) is the first-token KL vs full when an image's reused rows are
 *   computed through layers < l and reused from layer l on (s[0]: naive, s[L]: full).
 * - `c[l] = max(0, max_{j >= l} s[j] - s[L])`: the error still left when reuse starts at
 *   layer l (a suffix maximum, so it never increases with l even where measurements are
 *   noisy). A layer whose computation removes much KL (a large drop s[l] - s[l+1]) raises
 *   c at it and at every earlier layer: early, sensitive layers get the most.
 * - `r[l] = min(1, lambda * c[l])`, with lambda chosen (bisection) so that the mean of r
 *   over layers is `budget` (water-filling: layers capped at 1 hand their excess to the
 *   others). When fewer layers have c > 0 than the budget can fill, those get 1 and the
 *   mean stays below budget. All c zero (reuse never hurt): uniform r = budget.
 *
 * The result is in [0, 1] and non-increasing with depth (min(1, lambda * c) is monotone in c).
 */
export function allocateRatios(sensitivity: readonly number[], budget: number): number[] {
  const L = sensitivity.length - 1;
  if (L < 1) throw new Error('sensitivity needs L + 1 >= 2 values');
  const b = Math.min(1, Math.max(0, budget));
  const sL = sensitivity[L];
  const c = new Array<number>(L);
  let m = -Infinity;
  for (let l = L - 1; l >= 0; l--) {
    m = Math.max(m, sensitivity[l]);
    c[l] = Math.max(0, m - sL);
  }
  if (!c.some((x) => x > 0) || b === 0) return uniformRatios(b, L);
  const mean = (lambda: number) => c.reduce((s, x) => s + Math.min(1, lambda * x), 0) / L;
  const minPos = Math.min(...c.filter((x) => x > 0));
  let lo = 0, hi = 1 / minPos; // at hi every layer with c > 0 is at 1
  if (mean(hi) <= b) return c.map((x) => (x > 0 ? 1 : 0));
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (mean(mid) < b) lo = mid; else hi = mid;
  }
  const r = c.map((x) => Math.min(1, hi * x));
  for (let l = 1; l < L; l++) r[l] = Math.min(r[l], r[l - 1]); // guard against float noise
  return r;
}
