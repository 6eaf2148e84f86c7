/**
 * What a chat turn is about, as plain data: the images a request carries (workspace image files, pasted or dropped
 * bytes), the images and text of earlier turns (so a follow-up reuses their KV and prefix), the question without its
 * `#file` references, and code attached as context. No `vscode` import: chat-participant.ts turns VS Code's objects
 * into these shapes, and test/unit/extension/chat-images.test.ts checks the logic.
 */
import { createHash } from 'node:crypto';

/** The image formats the daemon decodes, by MIME type → file extension. */
const IMAGE_MIME_TYPES: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/jpg': 'jpg', 'image/gif': 'gif', 'image/webp': 'webp' };

export function isImageMimeType(mimeType: string): boolean {
  return mimeType.toLowerCase() in IMAGE_MIME_TYPES;
}

export function hasImageExtension(path: string): boolean {
  return /\.(png|jpe?g|gif|webp)$/i.test(path);
}

/**
 * A pasted or dropped image (`vscode.ChatReferenceBinaryData` where the editor has it; 1.100's stable typings do not,
 * so it is recognised by shape): a MIME type and the bytes on demand.
 */
export interface BinaryImageLike {
  mimeType: string;
  data(): Thenable<Uint8Array>;
}

export function isBinaryImageLike(v: unknown): v is BinaryImageLike {
  return typeof v === 'object' && v !== null && typeof (v as BinaryImageLike).mimeType === 'string'
    && typeof (v as BinaryImageLike).data === 'function';
}

/** The content-addressed file name of pasted bytes: `<sha256 hex>.<ext>` (the same image is written once). */
export function attachmentFileName(bytes: Uint8Array, mimeType: string): string {
  const ext = IMAGE_MIME_TYPES[mimeType.toLowerCase()] ?? 'bin';
  return `${createHash('sha256').update(bytes).digest('hex')}.${ext}`;
}

/**
 * What the participant records in each answer's `ChatResult.metadata`: VS Code hands it back in `context.history`,
 * so later turns know the images (as `file:` URI strings) and the exact text of earlier turns.
 */
export interface ChatTurnMetadata {
  vlcache: 1;
  images: string[];
  /** The question as the daemon got it (code context included). */
  question: string;
  answer: string;
  command?: string;
}

export function isChatTurnMetadata(v: unknown): v is ChatTurnMetadata {
  const m = v as ChatTurnMetadata | undefined;
  return typeof m === 'object' && m !== null && m.vlcache === 1 && Array.isArray(m.images) && typeof m.question === 'string'
    && typeof m.answer === 'string';
}

/** The images of the latest earlier turn that had any (oldest first in `history`); empty when none did. */
export function earlierImages(history: readonly ChatTurnMetadata[]): string[] {
  for (let i = history.length - 1; i >= 0; i--) if (history[i].images.length > 0) return history[i].images;
  return [];
}

const sameImages = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The conversation the daemon gets with a question about `images`: the trailing run of earlier turns about the same
 * images, in order, as user/assistant messages. Turns about other images are left out (their images are not in the
 * prompt), so a follow-up's prompt starts with exactly the prefix the previous turn computed.
 */
export function conversationFor(images: readonly string[], history: readonly ChatTurnMetadata[]): { role: 'user' | 'assistant'; content: string }[] {
  let start = history.length;
  while (start > 0 && sameImages(history[start - 1].images, images)) start--;
  // A turn that failed or was stopped before any text is left out: the model never said anything there.
  return history.slice(start).filter((t) => t.answer).flatMap((t) => [
    { role: 'user' as const, content: t.question },
    { role: 'assistant' as const, content: t.answer },
  ]);
}

/** `prompt` without the text of the references at `ranges` (`#file:diagram.png`), spaces tidied. */
export function withoutReferences(prompt: string, ranges: readonly (readonly [number, number])[]): string {
  let out = prompt;
  // From the end, so earlier indices stay valid.
  for (const [start, end] of [...ranges].sort((a, b) => b[0] - a[0])) {
    if (start >= 0 && end <= out.length && start <= end) out = out.slice(0, start) + out.slice(end);
  }
  return out.replace(/[ \t]{2,}/g, ' ').trim();
}

/** Code attached to a question (a `#selection` or a `#file` reference to a text file). */
export interface CodeContext {
  /** Workspace-relative name, with lines for a selection: "src/app.tsx:10-24". */
  name: string;
  text: string;
}

/** At most this much attached code goes into one question (the tiny context of a small model). */
export const MAX_CODE_CONTEXT_CHARS = 6000;

/** The question with the attached code after it, each piece fenced and named; cut to {@link MAX_CODE_CONTEXT_CHARS}. */
export function questionWithCode(question: string, code: readonly CodeContext[]): string {
  let budget = MAX_CODE_CONTEXT_CHARS;
  const parts: string[] = [];
  for (const c of code) {
    if (budget <= 0) break;
    const text = c.text.length > budget ? `${c.text.slice(0, budget)}\n…` : c.text;
    budget -= text.length;
    parts.push(`${c.name}:\n\`\`\`\n${text.replace(/\s+$/, '')}\n\`\`\``);
  }
  return parts.length === 0 ? question : `${question}\n\nCode for context:\n\n${parts.join('\n\n')}`;
}

/** A follow-up the Chat view offers under an answer (`vscode.ChatFollowup`'s fields). */
export interface FollowupSuggestion {
  prompt: string;
  label: string;
  command?: string;
}

/** Follow-ups for an answer: more detail, then code from a mockup or a question about the code it relates to. */
export function followupsFor(m: ChatTurnMetadata): FollowupSuggestion[] {
  if (!m.answer || m.images.length === 0) return [];
  const out: FollowupSuggestion[] = [{ prompt: 'Explain it in more detail.', label: 'Explain in more detail' }];
  if (m.command === 'mockup') out.push({ prompt: 'Which parts of this UI are interactive?', label: 'Which parts are interactive?' });
  else out.push({ prompt: 'Write the code for it.', label: 'Turn it into code', command: 'mockup' });
  return out;
}
