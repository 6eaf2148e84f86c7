/**
 * The `@vlcache` chat participant (package.json `contributes.chatParticipants`): answers questions about the images
 * attached to a chat request — `#file` references to workspace images, images pasted or dropped into the chat box —
 * with the local model, streaming the answer, then the cache badge (badge.ts's words) and follow-ups. A turn without
 * images is about the images of the latest earlier turn that had some, with the conversation about them, so the
 * daemon reuses their KV and the prompt prefix. `/explain` asks the Explain Diagram question, `/mockup` the Mockup to
 * Code one. Code attached with `#selection` or a `#file` text file goes into the question as context.
 *
 * Registered only where the editor has the Chat API (`vscode.chat.createChatParticipant`).
 */
import * as vscode from 'vscode';
import { EXPLAIN_QUESTION } from '../../server/src/protocol';
import { logAskError } from './answer-view';
import { cacheBadge } from './badge';
import { saveAttachment } from './chat-attachments';
import {
  conversationFor, earlierImages, followupsFor, hasImageExtension, isBinaryImageLike, isChatTurnMetadata, questionWithCode,
  withoutReferences, type ChatTurnMetadata, type CodeContext,
} from './chat-images';
import { errorCode, type Daemon } from './daemon';
import { firstNonImage } from './images';
import { mockupQuestion } from './mockup';
import * as settings from './settings';

export const CHAT_PARTICIPANT_ID = 'vlcache.chat';
/** LSP's RequestCancelled: the ask was dropped while queued. */
const REQUEST_CANCELLED = -32800;

/** Registers the participant where the Chat API exists; returns the handler too (the extension tests call it). */
export function registerChatParticipant(context: vscode.ExtensionContext, daemon: Daemon): { handler: vscode.ChatRequestHandler; disposable?: vscode.Disposable } {
  const handler: vscode.ChatRequestHandler = (request, chatContext, stream, token) => answer(context, daemon, request, chatContext, stream, token);
  const chat = (vscode as { chat?: typeof vscode.chat }).chat;
  if (typeof chat?.createChatParticipant !== 'function') return { handler };
  const participant = chat.createChatParticipant(CHAT_PARTICIPANT_ID, handler);
  participant.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'icon.png');
  participant.followupProvider = { provideFollowups: (result) => followups(result) };
  return { handler, disposable: participant };
}

export function followups(result: vscode.ChatResult): vscode.ChatFollowup[] {
  return isChatTurnMetadata(result.metadata) ? followupsFor(result.metadata) : [];
}

/** What the request itself carries: images (as files), code context, the reference ranges to drop from the prompt. */
interface RequestParts {
  images: vscode.Uri[];
  code: CodeContext[];
  ranges: [number, number][];
  /** References that are neither a readable image nor code (told to the user). */
  skipped: string[];
}

async function partsOf(context: vscode.ExtensionContext, references: readonly vscode.ChatPromptReference[]): Promise<RequestParts> {
  const parts: RequestParts = { images: [], code: [], ranges: [], skipped: [] };
  // References come last-in-prompt first: reversed, images keep the order they were written in.
  for (const ref of [...references].reverse()) {
    const v = ref.value;
    if (ref.range) parts.ranges.push(ref.range);
    if (v instanceof vscode.Uri && hasImageExtension(v.path)) {
      parts.images.push(v);
    } else if (v instanceof vscode.Uri || v instanceof vscode.Location) {
      const uri = v instanceof vscode.Uri ? v : v.uri;
      const name = vscode.workspace.asRelativePath(uri);
      try {
        const doc = await vscode.workspace.openTextDocument(uri);
        if (v instanceof vscode.Uri) parts.code.push({ name, text: doc.getText() });
        else parts.code.push({ name: `${name}:${v.range.start.line + 1}-${v.range.end.line + 1}`, text: doc.getText(v.range) });
      } catch {
        parts.skipped.push(`${name} (neither an image nor a text file)`);
      }
    } else if (isBinaryImageLike(v)) {
      const file = await saveAttachment(context, v);
      if (file) parts.images.push(file);
      else parts.skipped.push(`an attachment of type ${v.mimeType} (the model reads PNG, JPEG, GIF and WebP)`);
    } else if (ref.range) {
      parts.ranges.pop(); // a value we do not read (a tool, a symbol): its text stays in the question
    }
  }
  const seen = new Set<string>();
  parts.images = parts.images.filter((u) => !seen.has(u.toString()) && !!seen.add(u.toString()));
  return parts;
}

function historyOf(chatContext: vscode.ChatContext): ChatTurnMetadata[] {
  return chatContext.history.flatMap((t) => {
    const m = (t as Partial<vscode.ChatResponseTurn>).result?.metadata;
    return isChatTurnMetadata(m) ? [m] : [];
  });
}

function questionFor(command: string | undefined, prompt: string): string {
  if (command === 'mockup') return prompt ? `${mockupQuestion(settings.mockupLanguage())} ${prompt}` : mockupQuestion(settings.mockupLanguage());
  return prompt || EXPLAIN_QUESTION;
}

const NO_IMAGES = 'Attach an image first: paste or drop one into the chat box, or reference a workspace image with `#file:` '
  + '(PNG, JPEG, GIF or WebP). Follow-up questions then reuse it.';

async function answer(context: vscode.ExtensionContext, daemon: Daemon, request: vscode.ChatRequest, chatContext: vscode.ChatContext,
  stream: vscode.ChatResponseStream, token: vscode.CancellationToken): Promise<vscode.ChatResult> {
  const history = historyOf(chatContext);
  let parts: RequestParts;
  try {
    parts = await partsOf(context, request.references);
  } catch (e) {
    return failed(stream, e);
  }
  for (const s of parts.skipped) stream.markdown(`_Skipped ${s}._\n\n`);
  const fresh = parts.images.length > 0;
  const images = fresh ? parts.images.map((u) => u.toString()) : earlierImages(history);
  if (images.length === 0) {
    stream.markdown(NO_IMAGES);
    return {};
  }
  const bad = fresh ? await firstNonImage(parts.images) : undefined;
  if (bad) return failed(stream, new Error(`${vscode.workspace.asRelativePath(bad.uri)} ${bad.problem}`));
  const question = questionWithCode(questionFor(request.command, withoutReferences(request.prompt, parts.ranges)), parts.code);
  const names = images.map((u) => vscode.workspace.asRelativePath(vscode.Uri.parse(u)));
  for (const u of images) stream.reference(vscode.Uri.parse(u));
  stream.progress(fresh ? `Reading ${names.join(', ')}…` : `Asking again about ${names.join(', ')} (from earlier in this chat)…`);
  const req = settings.requestSettings();
  const metadata: ChatTurnMetadata = { vlcache: 1, images, question, answer: '', command: request.command };
  try {
    const r = await daemon.ask({ images, question, history: conversationFor(images, history), maxTokens: req.maxTokens, mode: req.mode, ratio: req.ratio },
      (delta) => stream.markdown(delta), token, (message) => stream.progress(`${message}…`));
    metadata.answer = r.text;
    const badge = cacheBadge(r);
    const stopped = r.stopReason === 'cancelled' ? ' · stopped' : '';
    stream.markdown(`\n\n---\n_${badge.text}${stopped}_`);
    return { metadata };
  } catch (e) {
    if (token.isCancellationRequested || errorCode(e) === REQUEST_CANCELLED) return { metadata };
    return failed(stream, e, metadata);
  }
}

/** An error as the answer: said in the chat (errorDetails), logged with its cause to the output channel. */
function failed(stream: vscode.ChatResponseStream, e: unknown, metadata?: ChatTurnMetadata): vscode.ChatResult {
  const message = logAskError(e);
  stream.markdown('The VLCache output channel (**VLCache: Show Output**) has the details.');
  return { errorDetails: { message: `VLCache could not answer: ${message}` }, metadata };
}
