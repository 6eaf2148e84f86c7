/**
 * Images pasted or dropped into Chat become files the daemon can read and cache: written once, named by the SHA-256
 * of their bytes, under the extension's global storage (`chat-images/`). The daemon gets that folder at start
 * (`initializationOptions.attachmentDir`) and reads images there like workspace images.
 */
import * as vscode from 'vscode';
import { attachmentFileName, isImageMimeType, type BinaryImageLike } from './chat-images';

export function attachmentDir(context: vscode.ExtensionContext): vscode.Uri {
  return vscode.Uri.joinPath(context.globalStorageUri, 'chat-images');
}

/** Writes `image` (if not there yet) and returns its file; undefined for a format the model does not read. */
export async function saveAttachment(context: vscode.ExtensionContext, image: BinaryImageLike): Promise<vscode.Uri | undefined> {
  if (!isImageMimeType(image.mimeType)) return undefined;
  const bytes = await image.data();
  const dir = attachmentDir(context);
  const file = vscode.Uri.joinPath(dir, attachmentFileName(bytes, image.mimeType));
  const exists = await vscode.workspace.fs.stat(file).then(() => true, () => false);
  if (!exists) {
    await vscode.workspace.fs.createDirectory(dir);
    await vscode.workspace.fs.writeFile(file, bytes);
  }
  return file;
}
