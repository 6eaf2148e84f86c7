/**
 * `textDocument/codeLens` on Markdown image links and HTML `<img>` tags: "Ask about
 * image" and "Explain diagram" above each reference to an existing workspace image
 * whose first bytes are an image we decode (a text file named `.png` gets none).
 * The extension registers both commands; each takes the image's file URI.
 */
import { pathToFileURL } from 'node:url';
import type { CodeLens } from 'vscode-languageserver-protocol';
import { isDecodableImage } from './image-sniff';
import { findImageReferences, type ReferenceForm } from './references';
import { resolveReference } from './resolve';
import type { TextDoc } from './text-document';

export const ASK_COMMAND = 'vlcache.askAboutImage';
export const EXPLAIN_COMMAND = 'vlcache.explainDiagram';

/** Definitions (`[label]: path`) get no lens: the images that use them do. */
const LENS_FORMS: ReadonlySet<ReferenceForm> = new Set(['markdown', 'markdown-ref', 'img']);

export function imageCodeLenses(doc: TextDoc, roots: readonly string[]): CodeLens[] {
  const lenses: CodeLens[] = [];
  // A document may repeat one image thousands of times: resolve (stat) each target once.
  const resolved = new Map<string, string | undefined>();
  for (const ref of findImageReferences(doc.getText(), doc.languageId)) {
    if (!LENS_FORMS.has(ref.form)) continue;
    if (!resolved.has(ref.target)) {
      const path = resolveReference(ref.target, doc.uri, roots);
      resolved.set(ref.target, path !== undefined && isDecodableImage(path) ? path : undefined);
    }
    const path = resolved.get(ref.target);
    if (!path) continue;
    const uri = pathToFileURL(path).href;
    const range = { start: doc.positionAt(ref.start), end: doc.positionAt(ref.end) };
    lenses.push(
      { range, command: { title: '$(comment-discussion) Ask about image', command: ASK_COMMAND, arguments: [uri] } },
      { range, command: { title: '$(lightbulb) Explain diagram', command: EXPLAIN_COMMAND, arguments: [uri] } },
    );
  }
  return lenses;
}
