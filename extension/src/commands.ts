/**
 * The VLCache commands. Each returns what it produced (a Turn, a document, the
 * statistics) so the extension tests can check it through executeCommand.
 */
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { AnswerPanel, showAskError, type Turn } from './answer-view';
import { describe, type Daemon } from './daemon';
import { formatBytes } from './format';
import { firstNonImage, resolveImages } from './images';
import { mockupToCode, type MockupOutcome } from './mockup';
import { registerStopMockup, withMockupProgress } from './mockup-progress';
import { StatsPanel } from './stats-view';
import { EXPLAIN_QUESTION } from '../../server/src/protocol';

/** Options a caller (a test, another command) can pass as the last argument. */
interface CommandOptions {
  question?: string;
  confirm?: boolean;
}

function optionsOf(args: unknown[]): CommandOptions {
  const last = args[args.length - 1];
  return typeof last === 'object' && last !== null && !(last instanceof vscode.Uri) && !Array.isArray(last) ? last as CommandOptions : {};
}

export function registerCommands(context: vscode.ExtensionContext, daemon: Daemon): vscode.Disposable[] {
  const version = String(context.extension.packageJSON.version ?? '0.0.0');
  /** A text file named `.png` is refused here: no answer view opens for it. */
  const allImages = async (images: vscode.Uri[]): Promise<boolean> => {
    const bad = await firstNonImage(images);
    if (!bad) return true;
    void showAskError(new Error(`${vscode.workspace.asRelativePath(bad.uri)} ${bad.problem}`));
    return false;
  };
  const askAbout = async (images: vscode.Uri[], question: string): Promise<Turn | undefined> => {
    if (images.length === 0 || !(await allImages(images))) return undefined;
    return AnswerPanel.forImages(context, daemon, images).ask(question);
  };
  return [
    registerStopMockup(),
    vscode.commands.registerCommand('vlcache.askAboutImage', async (first?: unknown, second?: unknown, ...rest: unknown[]) => {
      const opts = optionsOf([first, second, ...rest]);
      const images = await resolveImages(first, second, 'Images to ask about (several may be picked)');
      if (images.length === 0) return undefined;
      const question = opts.question ?? await vscode.window.showInputBox({
        title: `Ask about ${images.length === 1 ? vscode.workspace.asRelativePath(images[0]) : `${images.length} images`}`,
        prompt: 'Your question', placeHolder: 'What does this screenshot show? Which component handles the login?',
        ignoreFocusOut: true, validateInput: (v) => (v.trim() ? undefined : 'Type a question'),
      });
      return question?.trim() ? askAbout(images, question.trim()) : undefined;
    }),
    vscode.commands.registerCommand('vlcache.explainDiagram', async (first?: unknown, second?: unknown, ...rest: unknown[]) => {
      const images = await resolveImages(first, second, 'Diagrams to explain');
      return askAbout(images, optionsOf([first, second, ...rest]).question ?? EXPLAIN_QUESTION);
    }),
    vscode.commands.registerCommand('vlcache.mockupToCode', async (first?: unknown, second?: unknown): Promise<MockupOutcome | undefined> => {
      const images = await resolveImages(first, second, 'UI mockup to turn into code');
      if (images.length === 0 || !(await allImages(images))) return undefined;
      // Progress: the code streaming into its editor, and a status-bar item with Stop (no notification over it).
      return withMockupProgress(basename(images[0].path), async (token) => {
        try {
          return await mockupToCode(daemon, images, token);
        } catch (e) {
          if (!token.isCancellationRequested) void showAskError(e);
          return undefined;
        }
      });
    }),
    vscode.commands.registerCommand('vlcache.showCacheStatistics', async () => {
      try {
        const stats = await daemon.stats();
        return StatsPanel.show(context, stats).shown;
      } catch (e) {
        void showAskError(e);
        return undefined;
      }
    }),
    vscode.commands.registerCommand('vlcache.clearWorkspaceCache', async (...args: unknown[]) => {
      if (optionsOf(args).confirm !== false) {
        const pick = await vscode.window.showWarningMessage('Clear the VLCache image cache of this workspace (memory and disk)?',
          { modal: true, detail: 'Every image is encoded and prefilled again the next time it is asked about.' }, 'Clear');
        if (pick !== 'Clear') return undefined;
      }
      try {
        const r = await daemon.clearCache();
        void vscode.window.showInformationMessage(`VLCache: removed ${r.nEntriesRemoved} cache entries (${formatBytes(r.bytesRemoved)}).`);
        return r;
      } catch (e) {
        void showAskError(e);
        return undefined;
      }
    }),
    vscode.commands.registerCommand('vlcache.restartDaemon', async () => {
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'VLCache: restarting the daemon' }, async () => {
        try {
          await daemon.restart();
        } catch (e) {
          void vscode.window.showErrorMessage(`VLCache: the daemon did not start: ${describe(e)}`, 'Show Output')
            .then((pick) => { if (pick) daemon.output.show(); });
        }
      });
      return daemon.currentState;
    }),
    vscode.commands.registerCommand('vlcache.showOutput', () => daemon.output.show()),
    vscode.commands.registerCommand('vlcache.showVersion', () => {
      void vscode.window.showInformationMessage(`VLCache ${version}`);
      return version;
    }),
  ];
}
