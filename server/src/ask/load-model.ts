/**
 * Loading a model for answering (the daemon's engine host, `vlcache ask`, `vlcache eval`):
 * the checkpoint, its calibrated layer schedule when one will be used (planner/recompute.ts),
 * and the model's sessions, on the layered step graph exactly when there is that schedule.
 */
import { loadCheckpoint, type Checkpoint } from '../engine/checkpoint';
import { imageWorkers } from '../engine/image/isolate';
import { VlModel, type LoadOptions } from '../engine/model';
import type { Mode } from '../planner/plan';
import { usesSchedule } from '../planner/recompute';
import { loadSchedule, type LayerSchedule } from '../planner/schedule';

export interface LoadModelOptions extends Omit<LoadOptions, 'layered'> {
  /** The configured reuse mode and ratio (undefined: none); no reuse at all: no schedule. */
  readonly reuse?: { readonly mode: Mode; readonly ratio?: number };
  /** Called once the checkpoint is read, before the graphs are built and the sessions opened (the slow part). */
  readonly onCheckpoint?: (ckpt: Checkpoint) => void;
}

export interface LoadedModel {
  readonly model: VlModel;
  /** The schedule the model was loaded for (on the layered graph); undefined: uniform ratios. */
  readonly schedule?: LayerSchedule;
}

/**
 * @throws the checkpoint loader's errors (missing or bad files, unsupported model), and
 *   DeviceError when an explicitly requested device is unavailable.
 */
export async function loadModel(dir: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const ckpt = loadCheckpoint(dir);
  for (const w of ckpt.warnings) opts.log?.(`note: ${w}`);
  const schedule = opts.reuse && usesSchedule(opts.reuse.mode, opts.reuse.ratio)
    ? loadSchedule(ckpt.fingerprint, ckpt.config.text.numLayers, opts.log) : undefined;
  opts.onCheckpoint?.(ckpt);
  imageWorkers().warm(); // the image worker starts while the graphs are built
  const model = await VlModel.load(ckpt, { ...opts, layered: schedule !== undefined });
  return { model, schedule };
}
