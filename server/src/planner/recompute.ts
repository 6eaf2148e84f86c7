/**
 * Which rows VLCache recomputes for a reused image, decided here and nowhere else: an
 * explicit ratio (the `vlcache.recomputeRatio` setting, `--ratio`, a request's `ratio`)
 * is the same ratio at every layer; without one, in vlcache mode, the model's calibrated
 * layer schedule (`vlcache calibrate`, planner/schedule.ts) applies, which needs the
 * layered step graph; a model without a schedule uses the default uniform ratio.
 */
import type { Mode } from './plan';
import type { LayerSchedule } from './schedule';

/** Whether a calibrated schedule, where the model has one, chooses the recomputed rows. */
export function usesSchedule(mode: Mode, ratio: number | undefined): boolean {
  return mode === 'vlcache' && ratio === undefined;
}

/**
 * What the generator is told for one request: the uniform `ratio` or the schedule's per-layer
 * ratios. Both keys are always present (one undefined), so spreading this over other request
 * options replaces whatever they said.
 */
export interface Recompute {
  readonly mode: Mode;
  readonly ratio: number | undefined;
  readonly schedule: readonly number[] | undefined;
}

/** The recompute options of a request in `mode` with `ratio` (undefined: none given), on a model loaded with `schedule`. */
export function recomputeFor(mode: Mode, ratio: number | undefined, schedule: LayerSchedule | undefined): Recompute {
  return usesSchedule(mode, ratio) && schedule ? { mode, ratio: undefined, schedule: schedule.ratios } : { mode, ratio, schedule: undefined };
}
