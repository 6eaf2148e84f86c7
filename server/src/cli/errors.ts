/**
 * Turns engine errors into one actionable line on stderr (no stack trace for
 * expected conditions) and an exit code: 2 for bad input, 1 for anything else.
 */
import { CheckpointError } from '../engine/errors';
import { ContextExceededError } from '../ask/generate';
import { ImageError } from '../engine/image/errors';
import { DeviceError, DeviceMemoryError } from '../engine/ort';

/** A bad argument or file named on the command line. */
export class InputError extends Error {}

export function reportError(e: unknown): number {
  if (e instanceof InputError || e instanceof CheckpointError || e instanceof ImageError || e instanceof DeviceError || e instanceof ContextExceededError) {
    console.error(`vlcache: ${e.message}`);
    return 2;
  }
  if (e instanceof DeviceMemoryError) {
    console.error(`vlcache: ${e.message}`);
    return 1;
  }
  console.error(`vlcache: internal error: ${(e as Error)?.stack ?? String(e)}`);
  return 1;
}
