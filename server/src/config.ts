/** `initializationOptions` → a validated, frozen configuration, once at initialize. */
import { isAbsolute } from 'node:path';
import { ResponseError } from 'vscode-languageserver-protocol';
import { MODES, type Mode } from './planner/plan';
import { ErrorCodes } from './protocol/errors';
import type { DeviceSetting, InitializationOptions } from './protocol/initialize';

export interface ServerConfig {
  readonly cacheDir?: string;
  /** Images the editor wrote (pasted into Chat): readable like a workspace folder. */
  readonly attachmentDir?: string;
  readonly modelPath?: string; // undefined: the built-in model
  readonly device: DeviceSetting;
  readonly precision: 'auto' | 'fp32' | 'fp16';
  readonly kvArena: 'auto' | 'on' | 'off';
  readonly kvArenaRows?: number;
  readonly mode: Mode;
  readonly ratio?: number;
  readonly ramBytes: number;
  readonly diskBytes: number;
  readonly maxPixels?: number;
  readonly loadModelAtStartup: boolean;
  readonly idleTimeoutMs: number; // 0: never release
  readonly hover: boolean;
  readonly hoverWaitMs: number;
  readonly prefetchOnOpen: boolean;
}

const DEVICES: readonly DeviceSetting[] = ['auto', 'cpu', 'webgpu', 'cuda'];

/**
 * Node's timers hold at most 2^31 - 1 ms (24.8 days); a longer delay fires after 1 ms, so
 * idleTimeoutS 3e6 released the model right after every answer.
 */
const MAX_TIMER_S = Math.floor((2 ** 31 - 1) / 1000);
/** 1 PiB in MiB: budgets above it are typing mistakes, and their byte counts stay exact integers. */
const MAX_BUDGET_MB = 2 ** 30;

/** @throws ResponseError InvalidParams naming the bad option and what it takes. */
export function parseConfig(raw: unknown): ServerConfig {
  const o = (raw ?? {}) as InitializationOptions;
  const bad = (name: string, takes: string, v: unknown): never => {
    throw new ResponseError(ErrorCodes.InvalidParams, `initializationOptions.${name} takes ${takes}, not ${JSON.stringify(v)}`);
  };
  const absPath = (name: keyof InitializationOptions): string | undefined => {
    const v = o[name];
    if (v === undefined || v === null || v === '') return undefined;
    return typeof v === 'string' && isAbsolute(v) ? v : bad(name, 'an absolute path', v);
  };
  /** A number in [min, max]; `integer` refuses fractions (budgets, pixel counts). */
  const num = (name: keyof InitializationOptions, min: number, max: number, integer = false): number | undefined => {
    const v = o[name];
    if (v === undefined || v === null) return undefined;
    const ok = typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!integer || Number.isInteger(v));
    return ok ? v : bad(name, `${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`, v);
  };
  const oneOf = <T extends string>(name: keyof InitializationOptions, allowed: readonly T[], dflt: T): T => {
    const v = o[name];
    if (v === undefined || v === null) return dflt;
    return allowed.includes(v as T) ? (v as T) : bad(name, `one of ${allowed.join(', ')}`, v);
  };
  const bool = (name: keyof InitializationOptions, dflt: boolean): boolean => {
    const v = o[name];
    if (v === undefined || v === null) return dflt;
    return typeof v === 'boolean' ? v : bad(name, 'true or false', v);
  };
  return Object.freeze({
    cacheDir: absPath('cacheDir'),
    attachmentDir: absPath('attachmentDir'),
    modelPath: absPath('modelPath'),
    device: oneOf('device', DEVICES, 'auto'),
    precision: oneOf('precision', ['auto', 'fp32', 'fp16'] as const, 'auto'),
    kvArena: oneOf('kvArena', ['auto', 'on', 'off'] as const, 'auto'),
    kvArenaRows: num('kvArenaRows', 16, 1 << 20, true),
    mode: oneOf('mode', MODES, 'vlcache'),
    ratio: num('ratio', 0, 1),
    ramBytes: (num('ramBudgetMb', 0, MAX_BUDGET_MB, true) ?? 4096) * 2 ** 20,
    diskBytes: (num('diskBudgetMb', 0, MAX_BUDGET_MB, true) ?? 20480) * 2 ** 20,
    maxPixels: num('maxPixels', 1, 1 << 30, true),
    loadModelAtStartup: bool('loadModelAtStartup', false),
    idleTimeoutMs: Math.round((num('idleTimeoutS', 0, MAX_TIMER_S) ?? 600) * 1000),
    hover: bool('hover', true),
    hoverWaitMs: num('hoverWaitMs', 0, MAX_TIMER_S * 1000) ?? 0,
    prefetchOnOpen: bool('prefetchOnOpen', true),
  });
}

/** The longest question, and all history text together, that an ask may carry (item: a 50 MB question froze the daemon). */
export const MAX_QUESTION_CHARS = 100_000;
export const MAX_HISTORY_CHARS = 400_000;
export const MAX_IMAGES_PER_ASK = 32;
export const MAX_ANSWER_TOKENS = 32_768;

/**
 * Checks every field of a `vlcache/ask` before it is queued, so that a bad field is a clear
 * InvalidParams instead of an internal error deep in the engine.
 * @throws ResponseError InvalidParams naming the field and what it takes.
 */
export function checkAskParams(p: unknown): void {
  const bad = (field: string, takes: string, v: unknown): never => {
    const shown = JSON.stringify(v);
    throw new ResponseError(ErrorCodes.InvalidParams,
      `vlcache/ask: ${field} takes ${takes}, not ${shown === undefined ? String(v) : shown.length > 80 ? `${shown.slice(0, 80)}…` : shown}`);
  };
  if (typeof p !== 'object' || p === null) bad('params', 'an object', p);
  const o = p as Record<string, unknown>;
  const q = o.question;
  if (typeof q !== 'string' || q.trim() === '') bad('question', 'a non-empty string', q);
  if ((q as string).length > MAX_QUESTION_CHARS) {
    throw new ResponseError(ErrorCodes.InvalidParams,
      `vlcache/ask: the question is ${(q as string).length} characters long; the limit is ${MAX_QUESTION_CHARS}. Shorten it.`);
  }
  if (o.images !== undefined) {
    if (!Array.isArray(o.images) || o.images.some((i) => typeof i !== 'string' || i === '')) bad('images', 'a list of image paths or file URIs', o.images);
    if ((o.images as unknown[]).length > MAX_IMAGES_PER_ASK) bad('images', `at most ${MAX_IMAGES_PER_ASK} images`, (o.images as unknown[]).length);
  }
  if (o.history !== undefined) {
    if (!Array.isArray(o.history)) bad('history', 'a list of {role, content} turns', o.history);
    let chars = 0;
    for (const [i, t] of (o.history as unknown[]).entries()) {
      const turn = t as Record<string, unknown> | null;
      if (typeof turn !== 'object' || turn === null || (turn.role !== 'user' && turn.role !== 'assistant') || typeof turn.content !== 'string') {
        bad(`history[${i}]`, 'a {role: "user" | "assistant", content: string} turn', t);
      }
      chars += (turn!.content as string).length;
    }
    if (chars > MAX_HISTORY_CHARS) bad('history', `at most ${MAX_HISTORY_CHARS} characters in all`, chars);
  }
  const number = (field: string, ok: (v: number) => boolean, takes: string) => {
    const v = o[field];
    if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isFinite(v) && ok(v))) bad(field, takes, v);
  };
  number('maxTokens', (v) => Number.isInteger(v) && v >= 1 && v <= MAX_ANSWER_TOKENS, `a whole number from 1 to ${MAX_ANSWER_TOKENS}`);
  number('temperature', (v) => v >= 0 && v <= 100, 'a number from 0 (greedy) to 100');
  number('topP', (v) => v > 0 && v <= 1, 'a number above 0 and at most 1');
  number('seed', (v) => Number.isSafeInteger(v), 'a whole number');
  number('ratio', (v) => v >= 0 && v <= 1, 'a number from 0 to 1');
  if (o.mode !== undefined && o.mode !== null && !MODES.includes(o.mode as Mode)) bad('mode', `one of ${MODES.join(', ')}`, o.mode);
}

/**
 * Checks `vlcache/prefetch` params: `images` a list of at most MAX_IMAGES_PER_ASK paths.
 * @throws ResponseError InvalidParams.
 */
export function checkPrefetchParams(p: unknown): void {
  const images = (p as { images?: unknown } | null)?.images;
  if (images === undefined) return;
  if (!Array.isArray(images) || images.some((i) => typeof i !== 'string' || i === '') || images.length > MAX_IMAGES_PER_ASK) {
    throw new ResponseError(ErrorCodes.InvalidParams,
      `vlcache/prefetch: images takes a list of at most ${MAX_IMAGES_PER_ASK} image paths or file URIs, not ${JSON.stringify(images)?.slice(0, 80)}`);
  }
}
