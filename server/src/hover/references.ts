/**
 * Image references in a document's text, found line by line (no reference spans lines):
 *   markdown      `![alt](path "title")`, `![alt](<path with spaces>)`          (Markdown documents)
 *   markdown-ref  `![alt][label]`, `![label][]` with a `[label]: path` definition  (Markdown documents)
 *   markdown-def  the `[label]: path` definition itself                         (Markdown documents)
 *   img           `<img ... src="path">` (or src='path')                        (any language)
 *   css-url       `url(path)`, `url("path")`                                    (any language)
 *   string        a '...', "..." or `...` literal whose whole content names an image file (any language)
 * Only the formats our decoder reads count as images (engine/image/format.ts: PNG, JPEG, GIF, WebP).
 */

export type ReferenceForm = 'markdown' | 'markdown-ref' | 'markdown-def' | 'img' | 'css-url' | 'string';

export interface ImageReference {
  /** [start, end) offsets of the whole reference in the text. */
  start: number;
  end: number;
  /** The path as written, without Markdown's <> and title, percent-decoded in Markdown. */
  target: string;
  form: ReferenceForm;
}

const IMAGE_PATH = /\.(png|jpe?g|gif|webp)$/i;

/** Whether `target` (query and fragment aside) ends in an extension of a format we decode, and is not a web URL. */
export function isImagePath(target: string): boolean {
  if (/^(https?|data|blob):/i.test(target)) return false;
  return IMAGE_PATH.test(stripQuery(target));
}

/** `target` without `?query` and `#fragment`. */
export function stripQuery(target: string): string {
  return target.replace(/[?#].*$/, '');
}

/** Markdown documents get the Markdown forms. */
export function isMarkdown(languageId: string): boolean {
  return languageId === 'markdown' || languageId === 'mdx';
}

/** More specific forms first. */
const RANK: Record<ReferenceForm, number> = { 'markdown': 0, 'markdown-ref': 0, 'markdown-def': 0, 'img': 1, 'css-url': 2, 'string': 3 };

/*
 * NOTE: every pattern is linear in the line's length. A failed attempt at one start may not
 * rescan what a later start will scan again, so no run can cross the delimiter that opens
 * the next attempt: alt text and labels stop at a bare '[', bare targets at '(' and '<',
 * <img> tags at '<', url() arguments at '('; quoted runs stop at their own quote, which
 * is the next attempt's opening. (`![![![…`, `<img <img …`, `url(url(…` were quadratic:
 * 17-24 s for a 200 KB line.) String literals are scanned by hand (see scanStrings).
 */
const MD_INLINE = /!\[((?:[^[\]\n]|\[[^[\]\n]*\])*)\]\(\s*(<[^<>\n]*>|[^\s()<]+)(?:\s+(?:"[^"\n]*"|'[^'\n]*'|\([^()\n]*\)))?\s*\)/g;
const MD_REF = /!\[((?:[^[\]\n]|\[[^[\]\n]*\])*)\]\[([^[\]\n]*)\]/g;
const MD_DEF = /^ {0,3}\[([^\]\n]+)\]:[ \t]*(<[^>\n]*>|\S+)/;
const IMG_SRC = /<img\b[^<>\n]*?\bsrc\s*=\s*(?:"([^"\n]*)"|'([^'\n]*)')/gi;
const CSS_URL = /url\(\s*(?:"([^"\n]*)"|'([^'\n]*)'|([^"'()\s]+))\s*\)/gi;

/**
 * The '...', "..." and `...` literals of a line, as the regex /(["'`])((?:\\.|(?!\1)[^\\\n])*)\1/g
 * finds them, in one pass: after a literal of one quote kind fails to close, every later
 * quote of that kind is escaped in the failed scan's parse and would fail the same way, so
 * that kind is not tried again on this line.
 */
function* scanStrings(line: string): Generator<{ start: number; end: number; content: string }> {
  const dead = new Set<string>();
  const lineBreak = (c: string) => c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029';
  for (let p = 0; p < line.length; p++) {
    const q = line[p];
    if ((q !== '"' && q !== "'" && q !== '`') || dead.has(q)) continue;
    let k = p + 1;
    while (k < line.length && line[k] !== q && line[k] !== '\n') {
      if (line[k] === '\\') {
        if (k + 1 >= line.length || lineBreak(line[k + 1])) break;
        k += 2;
      } else {
        k++;
      }
    }
    if (k < line.length && line[k] === q) {
      yield { start: p, end: k + 1, content: line.slice(p + 1, k) };
      p = k;
    } else {
      dead.add(q);
    }
  }
}

/**
 * Every image reference in `text`, in order of their start offsets; where two overlap
 * (an img tag's src is also a string), the more specific form comes first.
 */
export function findImageReferences(text: string, languageId: string): ImageReference[] {
  const md = isMarkdown(languageId);
  const defs = md ? markdownDefinitions(text) : new Map<string, string>();
  const out: ImageReference[] = [];
  let lineStart = 0;
  for (const line of text.split(/(?<=\r\n|\n|\r)/)) {
    scanLine(line, lineStart, md, defs, out);
    lineStart += line.length;
  }
  return out.sort((a, b) => a.start - b.start || RANK[a.form] - RANK[b.form]);
}

/**
 * The most specific reference whose span holds `offset` (its end included: the cursor may
 * sit right after it). Scans only the line of `offset` (and, in Markdown, the definitions).
 */
export function imageReferenceAt(text: string, offset: number, languageId: string): ImageReference | undefined {
  const md = isMarkdown(languageId);
  const lineStart = Math.max(text.lastIndexOf('\n', offset - 1), text.lastIndexOf('\r', offset - 1)) + 1;
  const lineEnd = text.slice(lineStart).search(/[\r\n]|$/) + lineStart;
  const line = text.slice(lineStart, lineEnd);
  const defs = md && line.includes('![') ? markdownDefinitions(text) : new Map<string, string>();
  const out: ImageReference[] = [];
  scanLine(line, lineStart, md, defs, out);
  return out.filter((r) => offset >= r.start && offset <= r.end).sort((a, b) => RANK[a.form] - RANK[b.form])[0];
}

/** Appends the references on one line (starting at offset `lineStart` of the text) to `out`. */
function scanLine(line: string, lineStart: number, md: boolean, defs: ReadonlyMap<string, string>, out: ImageReference[]): void {
  const add = (form: ReferenceForm, start: number, end: number, raw: string | undefined) => {
    const target = raw === undefined ? undefined : cleanTarget(raw, md);
    if (target && isImagePath(target)) out.push({ start: lineStart + start, end: lineStart + end, target, form });
  };
  if (md) {
    for (const m of line.matchAll(MD_INLINE)) add('markdown', m.index!, m.index! + m[0].length, m[2]);
    for (const m of line.matchAll(MD_REF)) add('markdown-ref', m.index!, m.index! + m[0].length, defs.get(label(m[2] || m[1])));
    const d = MD_DEF.exec(line);
    if (d) add('markdown-def', d.index, d.index + d[0].length, d[2]);
  }
  for (const m of line.matchAll(IMG_SRC)) add('img', m.index!, m.index! + m[0].length, m[1] ?? m[2]);
  for (const m of line.matchAll(CSS_URL)) add('css-url', m.index!, m.index! + m[0].length, m[1] ?? m[2] ?? m[3]);
  for (const m of scanStrings(line)) add('string', m.start, m.end, m.content);
}

/** `[label]: path` definitions, by normalised label (the first definition of a label wins, as in CommonMark). */
function markdownDefinitions(text: string): Map<string, string> {
  const defs = new Map<string, string>();
  for (const line of text.split(/\r\n|\n|\r/)) {
    const d = MD_DEF.exec(line);
    if (d && !defs.has(label(d[1]))) defs.set(label(d[1]), d[2]);
  }
  return defs;
}

/** CommonMark label matching: case-insensitive, inner whitespace collapsed. */
function label(s: string): string {
  return s.trim().replace(/\s+/g, ' ').toLowerCase();
}

function cleanTarget(raw: string, markdown: boolean): string {
  let t = raw.trim();
  if (markdown && t.startsWith('<') && t.endsWith('>')) t = t.slice(1, -1).trim();
  if (markdown) {
    try {
      t = decodeURI(t);
    } catch {
      // A stray % is kept as written.
    }
  }
  return t;
}
