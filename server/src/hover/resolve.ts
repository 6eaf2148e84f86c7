/**
 * A reference's target, as written in a document, to the image file it names:
 * relative paths against the document's folder (then each workspace folder, as code
 * run from the root would read them), "/x.png" against the workspace folder holding
 * the document (then as an absolute path), file: URIs as themselves. The file must
 * exist and lie inside a workspace folder (symbolic links followed); otherwise there
 * is no image and no hover.
 */
import { realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isInside, resolveImagePath } from '../convert';
import { stripQuery } from './references';

/** The absolute path of the image `target` names, seen from the document `docUri`; `undefined` when there is none. */
export function resolveReference(target: string, docUri: string, roots: readonly string[]): string | undefined {
  const t = stripQuery(target);
  if (t === '') return undefined;
  const docDir = docUri.startsWith('file:') ? real(dirname(fileURLToPath(docUri))) : undefined;
  const docRoots = docDir ? roots.filter((r) => isInside(docDir, r)) : [];
  let candidates: string[];
  if (/^[a-zA-Z][a-zA-Z0-9+.-]+:/.test(t) && !/^[a-zA-Z]:[\\/]/.test(t)) {
    if (!t.startsWith('file:')) return undefined;
    try {
      candidates = [fileURLToPath(t)];
    } catch {
      return undefined;
    }
  } else if (t.startsWith('/')) {
    candidates = [...[...docRoots, ...roots].map((r) => join(r, t)), t];
  } else if (isAbsolute(t)) {
    candidates = [t];
  } else {
    candidates = [...(docDir ? [resolve(docDir, t)] : []), ...roots.map((r) => resolve(r, t))];
  }
  const found = candidates.find(isFile);
  if (!found) return undefined;
  try {
    return resolveImagePath(found, roots);
  } catch {
    return undefined; // Outside every workspace folder.
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The path with symbolic links resolved, when it exists (workspace roots are resolved the same way). */
function real(p: string): string {
  try {
    return realpathSync.native(p);
  } catch {
    return p;
  }
}
