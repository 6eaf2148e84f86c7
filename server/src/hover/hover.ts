/**
 * `textDocument/hover` on image references: which image is under the cursor, and the
 * hover's Markdown (thumbnail, size, cache badge and TTFT, the explanation, Ask / Explain links).
 */
import { relative } from 'node:path';
import type { Position, Range } from 'vscode-languageserver-protocol';
import { isInside } from '../convert';
import type { Explanation } from './explanations';
import { imageReferenceAt } from './references';
import { resolveReference } from './resolve';
import type { TextDoc } from './text-document';

export interface HoverTarget {
  /** The image file, absolute, inside a workspace folder. */
  path: string;
  /** How the hover names it: its workspace-relative path. */
  name: string;
  /** The reference's span in the document. */
  range: Range;
  /**
   * The editor already shows this image in its own hover: VS Code's Markdown support previews
   * Markdown image links (`![](...)`, `![][ref]` and their definitions). Ours then adds no thumbnail.
   */
  previewedByEditor: boolean;
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
    previewedByEditor: ref.form.startsWith('markdown'),
  };
}

/**
 * "⚡ image cached · TTFT 12 ms" or "cold · TTFT 70 ms". `cacheHit` is the image's own reuse (its K/V or
 * encoder output); a reused system prompt alone is cold (server.ts, protocol/reuse.ts).
 */
export function cacheBadge(e: Pick<Explanation, 'cacheHit' | 'ttftMs'>): string {
  return `${e.cacheHit ? '⚡ image cached' : 'cold'} · TTFT ${Math.round(e.ttftMs)} ms`;
}

/** What a hover shows of the image itself. */
export interface HoverImage {
  /** The image's file URI: the argument of the Ask / Explain command links. */
  uri: string;
  /** Its own size, from the header (format.ts) or the thumbnail. */
  width: number;
  height: number;
  /** Omitted when the editor previews the image itself, or when it was not made within the hover's budget. */
  thumbnailUri?: string;
}

/**
 * The hover: the thumbnail (unless omitted), a line with the name, size and cache state, the
 * explanation or, until it is made, a line saying it is being prepared; then the Ask / Explain
 * command links. Shapes:
 *   ![name](data:…)\n\n**name** · W × H px · ⚡ image cached · TTFT 12 ms\n\nexplanation\n\nlinks
 *   **name** · W × H px · no explanation cached yet\n\n_…being prepared…_\n\nlinks
 */
export function hoverMarkdown(name: string, image: HoverImage, e: Explanation | undefined): string {
  const shown = escapeMarkdown(name);
  const thumb = image.thumbnailUri ? `![${shown}](${image.thumbnailUri})\n\n` : '';
  const head = `${thumb}**${shown}** · ${image.width} × ${image.height} px`;
  const body = e
    ? `${head} · ${cacheBadge(e)}\n\n${e.text.trim().replace(/\$\(/g, '\\$(') || '_(the model gave no explanation)_'}`
    : `${head} · no explanation cached yet\n\n_The explanation is being prepared by VLCache; hover again in a moment._`;
  return `${body}\n\n${commandLinks(name, image.uri)}`;
}

/**
 * "Ask…" and "Explain" as command links (`command:ID?ARGS`, ARGS the URI-encoded JSON array of
 * arguments): the same commands and arguments as the code lenses (code-lens.ts). VS Code runs
 * them only from a hover whose Markdown is trusted for these commands (extension/src/daemon.ts).
 */
export function commandLinks(name: string, uri: string): string {
  const args = encodeURIComponent(JSON.stringify([uri]));
  const title = (s: string) => s.replace(/["\\]/g, '');
  return `[$(comment-discussion) Ask about this image…](command:vlcache.askAboutImage?${args} "${title(`Ask VLCache a question about ${name}`)}")` +
    ` · [$(lightbulb) Explain](command:vlcache.explainDiagram?${args} "${title(`Explain ${name} in the answer view`)}")`;
}

/** A hover that says why there is no explanation (not an image, the model failed to load, ...). */
export function errorMarkdown(name: string, message: string): string {
  return `**${escapeMarkdown(name)}** · ⚠ ${escapeMarkdown(message)}`;
}

function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+!|<>$]/g, '\\$&');
}
