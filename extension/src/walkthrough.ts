/**
 * The Getting Started walkthrough's one command of its own (package.json `contributes.walkthroughs`; the other steps
 * run Select Model…, Download Model…, Install CUDA Provider and Ask About Image…): **VLCache: Open Sample Diagram**.
 *
 * The daemon answers only about images inside a workspace folder, and the extension's own folder is none, so the
 * sample (media/samples/diagram.png) is copied to the extension's global storage, opened in the image preview (its
 * title bar has Ask About Image…), and that folder is added to the window as "VLCache sample" (removable like any
 * folder). Adding the first folder of an empty window restarts the extensions; the preview stays open.
 */
import * as vscode from 'vscode';

export const OPEN_SAMPLE_COMMAND = 'vlcache.openSampleDiagram';
const SAMPLE = 'diagram.png';

export function registerWalkthrough(context: vscode.ExtensionContext): vscode.Disposable {
  return vscode.commands.registerCommand(OPEN_SAMPLE_COMMAND, async (): Promise<vscode.Uri> => {
    const folder = vscode.Uri.joinPath(context.globalStorageUri, 'sample');
    const image = vscode.Uri.joinPath(folder, SAMPLE);
    await vscode.workspace.fs.createDirectory(folder);
    await vscode.workspace.fs.copy(vscode.Uri.joinPath(context.extensionUri, 'media', 'samples', SAMPLE), image, { overwrite: true });
    await vscode.commands.executeCommand('vscode.open', image);
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (!folders.some((f) => f.uri.toString() === folder.toString())) {
      vscode.workspace.updateWorkspaceFolders(folders.length, 0, { uri: folder, name: 'VLCache sample' });
    }
    return image;
  });
}
