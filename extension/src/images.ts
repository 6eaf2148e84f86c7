/**
 * Which images a command is about: the explorer selection, a code lens or editor
 * title argument, the image open in the active editor, or a pick from the
 * workspace's image files.
 */
import * as vscode from 'vscode';
import { open } from 'node:fs/promises';
import { imageFormatOf } from './error-text';

/** The formats the daemon decodes (server/src/engine/image/). */
export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'webp'] as const;
const IMAGE_GLOB = `**/*.{${IMAGE_EXTENSIONS.join(',')}}`;
const EXCLUDE_GLOB = '**/{node_modules,.git,dist,out,build}/**';
const MAX_PICK_FILES = 5000;

export function isImageUri(u: vscode.Uri): boolean {
  const m = /\.([a-z0-9]+)$/i.exec(u.path);
  return m !== null && (IMAGE_EXTENSIONS as readonly string[]).includes(m[1].toLowerCase());
}

/**
 * The images from a command's arguments: `(clicked, selection[])` from the explorer,
 * `(uri)` from an editor title, `(uriString)` from a code lens. Empty when none of
 * them names an image.
 */
export function imagesFromArgs(first: unknown, second: unknown): vscode.Uri[] {
  const toUri = (a: unknown): vscode.Uri | undefined =>
    a instanceof vscode.Uri ? a : typeof a === 'string' && a ? (/^[a-z][\w+.-]*:/i.test(a) ? vscode.Uri.parse(a) : vscode.Uri.file(a)) : undefined;
  const all = Array.isArray(second) && second.length > 0 ? second.map(toUri) : [toUri(first)];
  const seen = new Set<string>();
  return all.filter((u): u is vscode.Uri => u !== undefined && isImageUri(u) && !seen.has(u.toString()) && !!seen.add(u.toString()));
}

/** The image shown in the active editor tab (the built-in image preview), if any. */
export function activeImage(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const uri = input instanceof vscode.TabInputCustom || input instanceof vscode.TabInputText ? input.uri : undefined;
  return uri && isImageUri(uri) ? uri : undefined;
}

/** Resolves a command's images: its arguments, else the active image, else a multi-select pick. */
export async function resolveImages(first: unknown, second: unknown, placeHolder: string): Promise<vscode.Uri[]> {
  const fromArgs = imagesFromArgs(first, second);
  if (fromArgs.length) return fromArgs;
  const active = activeImage();
  if (active) return [active];
  return pickImages(placeHolder);
}

export async function pickImages(placeHolder: string): Promise<vscode.Uri[]> {
  const files = await vscode.workspace.findFiles(IMAGE_GLOB, EXCLUDE_GLOB, MAX_PICK_FILES);
  if (files.length === 0) {
    void vscode.window.showInformationMessage(`VLCache: no images (${IMAGE_EXTENSIONS.join(', ')}) in this workspace.`);
    return [];
  }
  files.sort((a, b) => a.path.localeCompare(b.path));
  const items = files.map((uri) => ({ label: vscode.workspace.asRelativePath(uri), uri, iconPath: vscode.ThemeIcon.File, resourceUri: uri }));
  const picked = await vscode.window.showQuickPick(items, { placeHolder, canPickMany: true, matchOnDescription: true });
  return picked?.map((p) => p.uri) ?? [];
}

/**
 * The first of `images` whose bytes are not a PNG, JPEG, GIF or WebP image (a text file named `.png`),
 * with what it starts with; undefined when all are images. Read: the first 12 bytes of each.
 */
export async function firstNonImage(images: readonly vscode.Uri[]): Promise<{ uri: vscode.Uri; problem: string } | undefined> {
  for (const uri of images) {
    if (uri.scheme !== 'file') continue; // the daemon reads only workspace files and says so itself
    let head: Uint8Array;
    try {
      const f = await open(uri.fsPath, 'r');
      try {
        head = new Uint8Array(12);
        const { bytesRead } = await f.read(head, 0, 12, 0);
        head = head.subarray(0, bytesRead);
      } finally {
        await f.close();
      }
    } catch (e) {
      return { uri, problem: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
    }
    if (!imageFormatOf(head)) {
      const text = Buffer.from(head).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
      return { uri, problem: `is not a PNG, JPEG, GIF or WebP image (it starts with "${text}")` };
    }
  }
  return undefined;
}
