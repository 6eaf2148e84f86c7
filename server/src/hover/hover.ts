/**
 * `textDocument/hover` on image references: which image is under the cursor, and the
 * hover's Markdown (thumbnail, size, cache badge and TTFT, the explanation).
 */
import { relative } from 'node:path';
import type { Position, Range } from 'vscode-languageserver-protocol';
import { isInside } from '../convert';
import type { Explanation } from './explanations';
import { imageReferenceAt } from './references';
import { resolveReference } from './resolve';
import type { TextDoc } from './text-document';
import type { Thumbnail } from './thumbnail';

export interface HoverTarget {
  /** The image file, absolute, inside a workspace folder. */
  path: string;
  /** How the hover names it: its workspace-relative path. */
  name: string;
  /** The reference's span in the document. */
  range: Range;
}

/** The existing workspace image referenced at `position`, if any. */
export function hoverTarget(doc: TextDoc, position: Position, roots: readonly string[]): HoverTarget | undefined {
  const ref = imageReferenceAt(doc.getText(), doc.offsetAt(position), doc.languageId);
  const path = ref && resolveReference(ref.target, doc.uri, roots);
  if (!ref || !path) return undefined;
  const root = roots.find((r) => isInside(path, r));
  return {
    path, name: root ? relative(root, path).split('\\').join('/') : path,
    range: { start: doc.positionAt(ref.start), end: doc.positionAt(ref.end) },
  };
}

/**
 * "⚡ image cached · TTFT 12 ms" or "cold · TTFT 70 ms". `cacheHit` is the image's own reuse (its K/V or
 * encoder output); a reused system prompt alone is cold (server.ts, protocol/reuse.ts).
 */
export function cacheBadge(e: Pick<Explanation, 'cacheHit' | 'ttftMs'>): string {
  return `${e.cacheHit ? '⚡ image cached' : 'cold'} · TTFT ${Math.round(e.ttftMs)} ms`;
}

/**
 * The hover: the thumbnail, a line with the name, size and badge, then the explanation;
 * without an explanation, a line saying it is being prepared.
 */
export function hoverMarkdown(name: string, thumb: Thumbnail, e: Explanation | undefined): string {
  const head = `![${escapeMarkdown(name)}](${thumb.dataUri})\n\n**${escapeMarkdown(name)}** · ${thumb.width} × ${thumb.height} px`;
  if (!e) return `${head} · explaining…\n\n_VLCache is preparing an explanation of this image; hover again in a moment._`;
  const text = e.text.trim() || '_(the model gave no explanation)_';
  return `${head} · ${cacheBadge(e)}\n\n${text}`;
}

/** A hover that says why there is no explanation (not an image, the model failed to load, ...). */
export function errorMarkdown(name: string, message: string): string {
  return `**${escapeMarkdown(name)}** · ⚠ ${escapeMarkdown(message)}`;
}

function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+!|<>]/g, '\\$&');
}
