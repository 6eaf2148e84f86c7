/**
 * The Chat view's messages (as a `LanguageModelChatProvider` gets them) → one `vlcache/ask`: the last user message's
 * text is the question, the text of the messages before it the history, and every image part (pasted into the chat)
 * an image. No `vscode` import (unit-tested); chat-model-provider.ts passes VS Code's objects, read by shape.
 */
import { isImageMimeType, type BinaryImageLike } from './chat-images';

/** `vscode.LanguageModelChatMessageRole`: User 1, Assistant 2. */
const USER = 1;

export interface LmMessageLike {
  role: number;
  content: readonly unknown[];
}

export interface LmAsk {
  question: string;
  history: { role: 'user' | 'assistant'; content: string }[];
  images: BinaryImageLike[];
}

const textOf = (parts: readonly unknown[]) => parts
  .map((p) => (typeof p === 'object' && p !== null && typeof (p as { value?: unknown }).value === 'string' ? (p as { value: string }).value : ''))
  .join('').trim();

/** An image part: `LanguageModelDataPart` ({ mimeType, data: Uint8Array }) with an image MIME type. */
function imageOf(p: unknown): BinaryImageLike | undefined {
  const d = p as { mimeType?: unknown; data?: unknown } | null;
  if (typeof d !== 'object' || d === null || typeof d.mimeType !== 'string' || !(d.data instanceof Uint8Array) || !isImageMimeType(d.mimeType)) return undefined;
  const bytes = d.data;
  return { mimeType: d.mimeType, data: () => Promise.resolve(bytes) };
}

export function toAsk(messages: readonly LmMessageLike[]): LmAsk {
  let last = messages.length - 1;
  while (last >= 0 && messages[last].role !== USER) last--;
  const history = messages.slice(0, Math.max(last, 0))
    .map((m) => ({ role: m.role === USER ? 'user' as const : 'assistant' as const, content: textOf(m.content) }))
    .filter((m) => m.content);
  const images = messages.flatMap((m) => m.content.map(imageOf).filter((i): i is BinaryImageLike => i !== undefined));
  return { question: last >= 0 ? textOf(messages[last].content) : '', history, images };
}

/** A token count without the tokenizer (the daemon has no request for it): about 4 characters a token, rounded up. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}
