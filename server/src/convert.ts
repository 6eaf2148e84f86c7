/**
 * LSP ⇄ engine in one place: client image references (file:// URIs or
 * workspace-relative paths) to checked absolute paths, engine results to protocol
 * results, engine errors to ResponseErrors.
 */
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LSPErrorCodes, ResponseError } from 'vscode-languageserver-protocol';
import type { AskResult as EngineAskResult } from './ask/generate';
import { ContextExceededError } from './ask/generate';
import { CheckpointError } from './engine/errors';
import { ImageError } from './engine/image/errors';
import { DeviceError, DeviceMemoryError } from './engine/ort';
import { CancelledError, QueueClosedError } from './scheduler/queue';
import type { AskResult } from './protocol/ask';
import type { ReuseMode } from './protocol/initialize';
import { ErrorCodes, type ContextExceededData, type PathErrorData } from './protocol/errors';

/** Absolute, symlink-free folder paths of the workspace folders (URIs or paths). */
export function workspaceRoots(folders: readonly string[]): string[] {
  return folders.map((f) => realOrResolved(f.startsWith('file:') ? fileURLToPath(f) : resolve(f)));
}

/**
 * Resolves an image reference to an absolute path inside a workspace folder.
 * Relative paths are tried against each folder in turn (the first where the file
 * exists wins). Symbolic links are followed before the check.
 * @throws ResponseError PathOutsideWorkspace for a non-file URI, no workspace
 *   folder, or a path that resolves outside every folder.
 */
export function resolveImagePath(ref: string, roots: readonly string[]): string {
  const refuse = (message: string, resolved?: string): never => {
    throw new ResponseError<PathErrorData>(ErrorCodes.PathOutsideWorkspace, message, { path: ref, resolved });
  };
  if (roots.length === 0) refuse(`${ref}: no workspace folder is open; open the folder that contains the image`);
  let candidates: string[];
  if (/^[a-zA-Z][a-zA-Z0-9+.-]+:/.test(ref) && !/^[a-zA-Z]:[\\/]/.test(ref)) {
    if (!ref.startsWith('file:')) refuse(`${ref}: only file:// URIs and workspace paths are supported`);
    try {
      candidates = [fileURLToPath(ref)];
    } catch (e) {
      return refuse(`${ref}: not a valid file URI (${(e as Error).message})`);
    }
  } else {
    candidates = isAbsolute(ref) ? [resolve(ref)] : roots.map((r) => resolve(r, ref));
  }
  const path = realOrResolved(candidates.find((c) => existsSync(c)) ?? candidates[0]);
  if (!roots.some((r) => isInside(path, r))) {
    refuse(`${ref}: the image is outside the workspace folders (${roots.join(', ')}); only workspace images can be asked about`, path);
  }
  return path;
}

/** Whether absolute `path` is `root` or lies under it. */
export function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

function realOrResolved(p: string): string {
  try {
    return realpathSync.native(p);
  } catch {
    return resolve(p);
  }
}

/** The engine's result in the protocol's shape; `images` are the client's references. */
export function toAskResult(r: EngineAskResult, images: readonly string[], queueMs: number): AskResult {
  const c = r.cache, t = r.timings;
  return {
    text: r.text,
    stopReason: r.stopReason,
    nPromptTokens: r.promptTokenIds.length,
    nGeneratedTokens: r.tokenIds.length,
    device: r.device,
    images: r.images.map((im, i) => ({ image: images[i] ?? im.name, width: im.width, height: im.height, nTokens: im.tokens, downscaled: im.downscaled,
      reuse: { ...im.reuse } })),
    cache: {
      mode: c.mode as ReuseMode, encoderHits: c.encoderHits, encoderMisses: c.encoderMisses, kvHits: c.kvHits,
      kvMisses: c.kvMisses, prefixTokensReused: c.prefixTokensReused, imageTokensReused: c.imageTokensReused,
      tokensComputed: c.tokensComputed, tokensTotal: c.tokensTotal, recomputeFraction: c.recomputeFraction, tier: [...c.tier],
    },
    timings: {
      preprocessMs: t.preprocessMs, visionMs: t.visionMs, prefillMs: t.prefillMs, ttftMs: t.ttftMs,
      decodeMs: t.decodeMs, decodeTokensPerS: t.decodeTokensPerS, queueMs,
    },
  };
}

/** Engine and scheduler errors as structured ResponseErrors; anything else is rethrown as is. */
export function toResponseError(e: unknown): unknown {
  if (e instanceof ResponseError) return e;
  if (e instanceof CancelledError) return new ResponseError(LSPErrorCodes.RequestCancelled, e.message);
  if (e instanceof QueueClosedError) return new ResponseError(ErrorCodes.ShuttingDown, e.message);
  if (e instanceof ContextExceededError) {
    return new ResponseError<ContextExceededData>(ErrorCodes.ContextExceeded, e.message, { nPromptTokens: e.nPromptTokens, nCtx: e.nCtx });
  }
  if (e instanceof ImageError) return new ResponseError(ErrorCodes.InvalidImage, e.message);
  if (e instanceof CheckpointError || e instanceof DeviceError) return new ResponseError(ErrorCodes.ModelLoadFailed, e.message);
  if (e instanceof DeviceMemoryError) return new ResponseError(ErrorCodes.OutOfMemory, e.message);
  return e;
}
