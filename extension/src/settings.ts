/**
 * The `vlcache.*` settings: what the daemon takes at start (initializationOptions)
 * and what each request carries. A change to a boot-time setting needs a daemon
 * restart; everything else applies to the next request.
 */
import { resolve } from 'node:path';
import * as vscode from 'vscode';
import type { DeviceSetting, InitializationOptions, ReuseMode } from '../../server/src/protocol';

/** Settings read once by the daemon at `initialize`: changing one restarts it. */
export const RESTART_SETTINGS = [
  'vlcache.modelPath',
  'vlcache.device',
  'vlcache.precision',
  'vlcache.gpu.kvArena',
  'vlcache.gpu.kvArenaRows',
  'vlcache.maxImagePixels',
  'vlcache.cache.ramBudgetMb',
  'vlcache.cache.diskBudgetMb',
  'vlcache.idleTimeoutSeconds',
  'vlcache.prefetch.onOpen',
] as const;

/** Per-request settings (sent with every ask). */
export interface RequestSettings {
  mode: ReuseMode;
  ratio?: number;
  maxTokens: number;
}

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('vlcache');
}

/**
 * The model folder the user set, with `~` and `${workspaceFolder}` expanded and a
 * relative path taken from the first workspace folder; undefined: the built-in model.
 */
export function modelPath(): string | undefined {
  const raw = config().get<string>('modelPath', '').trim();
  if (!raw) return undefined;
  const home = process.env.HOME ?? process.env.USERPROFILE ?? '';
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
  return resolve(folder, raw.replace(/^~(?=$|[\\/])/, home).replace(/\$\{workspaceFolder\}/g, folder));
}

/**
 * `initializationOptions` for the daemon; `cacheDir` is the extension's workspace storage, `attachmentDir` the folder
 * of images pasted into Chat (chat-images.ts writes them there).
 */
export function initializationOptions(cacheDir: string | undefined, attachmentDir?: string): InitializationOptions {
  const c = config();
  const orNull = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
  return {
    cacheDir,
    attachmentDir,
    modelPath: modelPath(),
    device: c.get<DeviceSetting>('device', 'auto'),
    precision: c.get<'auto' | 'fp16' | 'fp32'>('precision', 'auto'),
    kvArena: c.get<'auto' | 'on' | 'off'>('gpu.kvArena', 'auto'),
    kvArenaRows: c.get<number>('gpu.kvArenaRows', 1024),
    mode: c.get<ReuseMode>('mode', 'vlcache'),
    ratio: orNull(c.get<number | null>('recomputeRatio')),
    ramBudgetMb: c.get<number>('cache.ramBudgetMb', 4096),
    diskBudgetMb: c.get<number>('cache.diskBudgetMb', 20480),
    maxPixels: orNull(c.get<number | null>('maxImagePixels')),
    idleTimeoutS: c.get<number>('idleTimeoutSeconds', 600),
    prefetchOnOpen: c.get<boolean>('prefetch.onOpen', true),
    // Hovers are switched on and off in the client (middleware), so that setting needs no restart.
    hover: true,
  };
}

export function requestSettings(): RequestSettings {
  const c = config();
  const ratio = c.get<number | null>('recomputeRatio');
  return {
    mode: c.get<ReuseMode>('mode', 'vlcache'),
    ratio: ratio === null || ratio === undefined ? undefined : ratio,
    maxTokens: c.get<number>('maxTokens', 512),
  };
}

export function hoverEnabled(): boolean {
  return config().get<boolean>('hover.enabled', true);
}

export function codeLensEnabled(): boolean {
  return config().get<boolean>('codeLens.enabled', true);
}

export function mockupLanguage(): string {
  return config().get<string>('mockup.language', 'html');
}

/** The boot-time settings that this change touches (empty: nothing needs a restart). */
export function restartSettingsChanged(e: vscode.ConfigurationChangeEvent): string[] {
  return RESTART_SETTINGS.filter((s) => e.affectsConfiguration(s));
}
