/**
 * The local vision model in the Chat view's model picker: a `LanguageModelChatProvider` (vendor `vlcache`, declared
 * in package.json `contributes.languageModelChatProviders`). The API is stable from VS Code 1.104; this extension's
 * typings are 1.100's, so the shapes used are typed here and the provider is registered only where
 * `vscode.lm.registerLanguageModelChatProvider` exists at run time. VS Code shows such models only to some Copilot
 * plans; code-server 4.100 (VS Code 1.100) has neither the API nor the picker.
 */
import * as vscode from 'vscode';
import { saveAttachment } from './chat-attachments';
import type { Daemon } from './daemon';
import { estimateTokens, toAsk, type LmMessageLike } from './lm-messages';
import * as settings from './settings';

export const MODEL_VENDOR = 'vlcache';

/** `vscode.LanguageModelChatInformation` (1.104). */
interface ModelInformation {
  id: string;
  name: string;
  family: string;
  version: string;
  tooltip?: string;
  detail?: string;
  maxInputTokens: number;
  maxOutputTokens: number;
  capabilities: { imageInput?: boolean; toolCalling?: boolean | number };
}

/** `vscode.LanguageModelChatProvider` (1.104), as far as it is used here. */
interface ModelProvider {
  provideLanguageModelChatInformation(options: { silent: boolean }, token: vscode.CancellationToken): ModelInformation[];
  provideLanguageModelChatResponse(model: ModelInformation, messages: readonly LmMessageLike[], options: unknown,
    progress: vscode.Progress<unknown>, token: vscode.CancellationToken): Promise<void>;
  provideTokenCount(model: ModelInformation, text: string | LmMessageLike, token: vscode.CancellationToken): Promise<number>;
}

type Register = (vendor: string, provider: ModelProvider) => vscode.Disposable;

/** Whether this editor can show a model from an extension in the Chat view's picker. */
export function modelProviderSupported(): boolean {
  return typeof (vscode.lm as { registerLanguageModelChatProvider?: unknown } | undefined)?.registerLanguageModelChatProvider === 'function';
}

export function registerModelProvider(context: vscode.ExtensionContext, daemon: Daemon): vscode.Disposable | undefined {
  if (!modelProviderSupported()) return undefined;
  const register = (vscode.lm as unknown as { registerLanguageModelChatProvider: Register }).registerLanguageModelChatProvider;
  return register(MODEL_VENDOR, modelProvider(context, daemon));
}

export function modelProvider(context: vscode.ExtensionContext, daemon: Daemon): ModelProvider {
  const info: ModelInformation = {
    id: 'vlcache-local', name: 'VLCache (local vision model)', family: 'qwen2-vl', version: String(context.extension.packageJSON.version ?? '0'),
    tooltip: 'The Qwen2-VL model VLCache runs on this machine, with its image KV cache', detail: 'local',
    maxInputTokens: 32_768, maxOutputTokens: settings.requestSettings().maxTokens,
    capabilities: { imageInput: true, toolCalling: false },
  };
  return {
    provideLanguageModelChatInformation: () => [info],
    async provideLanguageModelChatResponse(_model, messages, _options, progress, token) {
      const ask = toAsk(messages);
      const images: string[] = [];
      for (const im of ask.images) {
        const file = await saveAttachment(context, im);
        if (file && !images.includes(file.toString())) images.push(file.toString());
      }
      const req = settings.requestSettings();
      await daemon.ask({ images, question: ask.question, history: ask.history, maxTokens: req.maxTokens, mode: req.mode, ratio: req.ratio },
        (delta) => progress.report(new vscode.LanguageModelTextPart(delta)), token);
    },
    provideTokenCount: async (_model, text) => estimateTokens(typeof text === 'string' ? text : text.content
      .map((p) => (typeof (p as { value?: unknown }).value === 'string' ? (p as { value: string }).value : '')).join('')),
  };
}
