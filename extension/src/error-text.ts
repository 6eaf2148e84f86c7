/**
 * Error text for people: file:// URIs and absolute paths inside a workspace folder become
 * workspace-relative paths. And a first look at a file's bytes, so a text file named `.png` is
 * refused before any answer view opens. Plain TypeScript (unit-tested without VS Code).
 */

/**
 * `message` with each `file://` URI and each absolute path under one of `folders` (absolute, no
 * trailing separator) written relative to that folder. `decode` turns a file URI into a path.
 */
export function relativePaths(message: string, folders: readonly string[], decode: (uri: string) => string): string {
  let out = message.replace(/file:\/\/[^\s'"`)<>,]+/g, (uri) => {
    try {
      return decode(uri);
    } catch {
      return uri;
    }
  });
  // Longest folder first, so a nested workspace folder wins over its parent.
  for (const f of [...folders].sort((a, b) => b.length - a.length)) {
    if (!f) continue;
    out = out.split(`${f}/`).join('').split(`${f}\\`).join('');
  }
  return out;
}

/** The image formats the model reads, by their leading bytes; undefined: not an image we can read. */
export function imageFormatOf(head: Uint8Array): 'png' | 'jpeg' | 'gif' | 'webp' | undefined {
  const at = (i: number, bytes: number[]) => bytes.every((b, k) => head[i + k] === b);
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (at(0, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (at(0, [0x47, 0x49, 0x46, 0x38])) return 'gif';
  if (at(0, [0x52, 0x49, 0x46, 0x46]) && at(8, [0x57, 0x45, 0x42, 0x50])) return 'webp';
  return undefined;
}
