/**
 * Lazy start: the extension activates on its commands, on opening an image and on the languages
 * whose image references it hovers, but the daemon (and with it the model) starts only when it is
 * needed: a command, or an open document that names an image file. A window holding only
 * `main.py` without image paths runs no daemon. Plain TypeScript (unit-tested without VS Code).
 */

/**
 * Languages whose image references the daemon hovers and lenses: Markdown forms, `<img src>`, CSS
 * `url()` and string literals. Only these are synced to the daemon (package.json's onLanguage
 * activation events list the same ids).
 */
export const HOVER_LANGUAGES: readonly string[] = [
  'markdown', 'mdx', 'html', 'css', 'scss', 'less', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
  'vue', 'svelte', 'python', 'json', 'yaml',
];

/** An image file name anywhere in the text (the daemon decides what is a reference; this only says "maybe"). */
const IMAGE_NAME = /\.(?:png|jpe?g|gif|webp)\b/i;

/** Whether a document of `languageId` with `text` could hold a hoverable image reference. */
export function needsDaemon(languageId: string, text: string): boolean {
  return HOVER_LANGUAGES.includes(languageId) && IMAGE_NAME.test(text);
}
