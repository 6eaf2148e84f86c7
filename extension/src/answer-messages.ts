/**
 * What the answer view's page (media/webview/answer.js) may ask of the extension, checked here before the host acts:
 * the page renders model output, so every message is parsed as untrusted input (unknown types, wrong field types,
 * oversized text and unexpected fields' values are dropped, never half-applied). No `vscode` import: unit-tested.
 */

/** The actions on each code block of an answer. */
export const CODE_ACTIONS = ['copy', 'insert', 'newFile'] as const;
export type CodeAction = (typeof CODE_ACTIONS)[number];

export type FromAnswerView =
  /** The follow-up box was submitted (trimmed, non-empty). */
  | { type: 'ask'; question: string }
  /** The Stop button. */
  | { type: 'stop' }
  /** The page's script has run and listens: messages posted before it would be lost (answer-view.ts queues them). */
  | { type: 'ready' }
  /**
   * A code block's Copy / Insert at Cursor / New File button. `code` is the block's text as rendered (the page
   * has no other copy); `language` the fence's info word (`ts`, `html`, '' when none), mapped by {@link languageIdOf}.
   */
  | { type: 'code'; action: CodeAction; code: string; language: string };

/** Longest question the follow-up box may send (characters). */
export const MAX_QUESTION_CHARS = 20_000;
/** Longest code block an action may carry (characters); answers are capped by maxTokens far below this. */
export const MAX_CODE_CHARS = 1_000_000;
/** A fence info word: letters, digits and `#+._-` (markdown-it puts it in `class="language-…"`). */
const LANGUAGE_WORD = /^[A-Za-z0-9#+._-]{0,64}$/;

/** The message as a {@link FromAnswerView}, or undefined when it is not one. */
export function parseAnswerViewMessage(m: unknown): FromAnswerView | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const o = m as Record<string, unknown>;
  switch (o.type) {
    case 'stop':
      return { type: 'stop' };
    case 'ready':
      return { type: 'ready' };
    case 'ask': {
      if (typeof o.question !== 'string' || o.question.length > MAX_QUESTION_CHARS) return undefined;
      const question = o.question.trim();
      return question ? { type: 'ask', question } : undefined;
    }
    case 'code': {
      const action = CODE_ACTIONS.find((a) => a === o.action);
      if (!action || typeof o.code !== 'string' || o.code.length > MAX_CODE_CHARS) return undefined;
      const language = o.language ?? '';
      if (typeof language !== 'string' || !LANGUAGE_WORD.test(language)) return undefined;
      return { type: 'code', action, code: o.code, language };
    }
    default:
      return undefined;
  }
}

/** Fence words that are not VS Code language ids, to the id they name. */
const LANGUAGE_ALIASES: Record<string, string> = {
  js: 'javascript', mjs: 'javascript', cjs: 'javascript', node: 'javascript', jsx: 'javascriptreact',
  ts: 'typescript', mts: 'typescript', cts: 'typescript', tsx: 'typescriptreact',
  py: 'python', python3: 'python', sh: 'shellscript', bash: 'shellscript', zsh: 'shellscript', shell: 'shellscript', console: 'shellscript',
  yml: 'yaml', md: 'markdown', htm: 'html', xhtml: 'html', svg: 'xml', 'c++': 'cpp', cc: 'cpp', hpp: 'cpp', h: 'c',
  cs: 'csharp', 'c#': 'csharp', rs: 'rust', rb: 'ruby', kt: 'kotlin', golang: 'go', ps1: 'powershell', ps: 'powershell',
  docker: 'dockerfile', text: 'plaintext', txt: 'plaintext', plain: 'plaintext', jsonc: 'jsonc', json5: 'json',
};

/**
 * The VS Code language id for a fence's info word, among `known` (vscode.languages.getLanguages()):
 * the word itself or its alias when known, else `plaintext`.
 */
export function languageIdOf(word: string, known: readonly string[]): string {
  const w = word.trim().toLowerCase();
  const id = known.includes(w) ? w : LANGUAGE_ALIASES[w];
  return id && known.includes(id) ? id : 'plaintext';
}
