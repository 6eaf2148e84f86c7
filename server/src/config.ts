/** `initializationOptions` → a validated, frozen configuration, once at initialize. */
import { isAbsolute } from 'node:path';
import { ResponseError } from 'vscode-languageserver-protocol';
import { MODES, type Mode } from './planner/plan';
import { ErrorCodes } from './protocol/errors';
import type { DeviceSetting, InitializationOptions } from './protocol/initialize';

export interface ServerConfig {
  readonly cacheDir?: string;
  readonly modelPath?: string; // undefined: the built-in model
  readonly device: DeviceSetting;
  readonly precision: 'auto' | 'fp32' | 'fp16';
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
  const num = (name: keyof InitializationOptions, min: number): number | undefined => {
    const v = o[name];
    if (v === undefined || v === null) return undefined;
    return typeof v === 'number' && Number.isFinite(v) && v >= min ? v : bad(name, `a number >= ${min}`, v);
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
    modelPath: absPath('modelPath'),
    device: oneOf('device', DEVICES, 'auto'),
    precision: oneOf('precision', ['auto', 'fp32', 'fp16'] as const, 'auto'),
    mode: oneOf('mode', MODES, 'vlcache'),
    ratio: num('ratio', 0),
    ramBytes: (num('ramBudgetMb', 0) ?? 4096) * 2 ** 20,
    diskBytes: (num('diskBudgetMb', 0) ?? 20480) * 2 ** 20,
    maxPixels: num('maxPixels', 1),
    loadModelAtStartup: o.loadModelAtStartup === true,
    idleTimeoutMs: (num('idleTimeoutS', 0) ?? 600) * 1000,
    hover: bool('hover', true),
    hoverWaitMs: num('hoverWaitMs', 0) ?? 400,
    prefetchOnOpen: bool('prefetchOnOpen', true),
  });
}
