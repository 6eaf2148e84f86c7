/**
 * The open documents' text, kept by incremental sync. A minimal TextDocument: main.ts
 * passes {@link textDocuments} to vscode-languageserver's `TextDocuments`, and tests
 * create documents directly. Offsets and `character`s are UTF-16 code units, as in
 * LSP's default position encoding and in JavaScript strings.
 */
import type { Position, TextDocumentContentChangeEvent } from 'vscode-languageserver-protocol';

export class TextDoc {
  private lineStarts?: number[];

  constructor(readonly uri: string, readonly languageId: string, readonly version: number, private readonly text: string) {}

  getText(): string {
    return this.text;
  }

  /** The offset of `p`, clamped to its line (a character past the line's end is the end, before its line break). */
  offsetAt(p: Position): number {
    const starts = this.starts();
    if (p.line >= starts.length) return this.text.length;
    if (p.line < 0) return 0;
    let lineEnd = p.line + 1 < starts.length ? starts[p.line + 1] : this.text.length;
    while (lineEnd > starts[p.line] && /[\r\n]/.test(this.text[lineEnd - 1])) lineEnd--;
    return Math.max(starts[p.line], Math.min(starts[p.line] + p.character, lineEnd));
  }

  positionAt(offset: number): Position {
    const starts = this.starts();
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0, hi = starts.length - 1; // the last line start <= o
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, character: o - starts[lo] };
  }

  /** A new document with `changes` applied in order (ranged edits, or whole-text replacements). */
  update(changes: readonly TextDocumentContentChangeEvent[], version: number): TextDoc {
    let doc: TextDoc = this;
    for (const c of changes) {
      const text = 'range' in c
        ? doc.text.slice(0, doc.offsetAt(c.range.start)) + c.text + doc.text.slice(doc.offsetAt(c.range.end))
        : c.text;
      doc = new TextDoc(doc.uri, doc.languageId, version, text);
    }
    return doc;
  }

  private starts(): number[] {
    if (this.lineStarts) return this.lineStarts;
    const s = [0];
    for (let i = 0; i < this.text.length; i++) {
      const ch = this.text.charCodeAt(i);
      if (ch === 13 /* \r */ && this.text.charCodeAt(i + 1) === 10) i++;
      if (ch === 13 || ch === 10) s.push(i + 1);
    }
    return (this.lineStarts = s);
  }
}

/** The `TextDocumentsConfiguration` for vscode-languageserver's `TextDocuments`. */
export const textDocuments = {
  create: (uri: string, languageId: string, version: number, content: string) => new TextDoc(uri, languageId, version, content),
  update: (doc: TextDoc, changes: TextDocumentContentChangeEvent[], version: number) => doc.update(changes, version),
};

/** Where the server looks up an open document (TextDocuments in main.ts; a Map in tests). */
export interface DocumentSource {
  get(uri: string): TextDoc | undefined;
}
