/**
 * Chat prompts: renders the checkpoint's Jinja chat template (with `@huggingface/jinja`,
 * which applies transformers' trim_blocks/lstrip_blocks) and turns the text into token
 * ids in which every `<|image_pad|>` is expanded to one id per merged image patch.
 *
 * For a Qwen2-VL user turn with one image the rendered text is
 *   <|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is this?<|im_end|>\n
 * and the single pad then becomes gridT * gridH * gridW / mergeSize^2 copies, exactly the
 * rows the vision encoder returns for that image (the order the processor uses).
 */
import { Template } from '@huggingface/jinja';
import { CheckpointError } from './errors';
import type { Tokenizer } from './tokenizer';

export type ContentPart = { readonly type: 'image' } | { readonly type: 'text'; readonly text: string };

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  /** Plain text, or parts: images first, then the text (the order Qwen was trained on). */
  readonly content: string | readonly ContentPart[];
}

/**
 * Qwen2-VL-2B/7B-Instruct's chat template, verbatim from its tokenizer_config.json
 * (also copied in openvino.genai src/cpp/src/tokenizer.cpp). Used only when a checkpoint
 * ships no template at all.
 */
export const QWEN2_VL_CHAT_TEMPLATE =
  "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}" +
  "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}" +
  "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}" +
  "{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}" +
  "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}" +
  "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}" +
  "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}" +
  "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}" +
  "<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

export interface RenderOptions {
  /** Append the `<|im_start|>assistant\n` header so the model answers next. Default true. */
  readonly addGenerationPrompt?: boolean;
  /** Prefix each image with "Picture N: " (a Qwen template option). Default false. */
  readonly addVisionId?: boolean;
}

/** A user turn with `nImages` images followed by the question. */
export function userTurn(nImages: number, text: string): ChatMessage {
  const parts: ContentPart[] = Array.from({ length: nImages }, () => ({ type: 'image' as const }));
  parts.push({ type: 'text', text });
  return { role: 'user', content: parts };
}

/** Special-token strings from tokenizer_config.json, which some templates reference. */
function specialTokenVars(tokenizerConfig: Record<string, unknown>): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const v = tokenizerConfig[key];
    const text = typeof v === 'string' ? v : (v as { content?: unknown } | null)?.content;
    if (typeof text === 'string') vars[key] = text;
  }
  return vars;
}

export class ChatTemplate {
  private readonly template: Template;

  private constructor(
    /** The Jinja source being rendered. */
    readonly source: string,
    /** True when the checkpoint had no template and the built-in Qwen2-VL one is used. */
    readonly isFallback: boolean,
    private readonly vars: Record<string, string>,
  ) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new CheckpointError('ChatTemplate',
        `The model's chat template cannot be parsed (${(e as Error).message}). Re-download tokenizer_config.json / chat_template.json.`);
    }
  }

  /**
   * @param chatTemplate the checkpoint's template (`Checkpoint.chatTemplate`), or undefined
   * @param tokenizerConfig tokenizer_config.json, for bos/eos token strings
   * @param log receives one line when the built-in fallback is used
   * @throws CheckpointError `ChatTemplate` when the template does not parse.
   */
  static create(chatTemplate: string | undefined, tokenizerConfig: Record<string, unknown> = {},
    log?: (line: string) => void): ChatTemplate {
    if (chatTemplate === undefined || chatTemplate.trim() === '') {
      log?.('The checkpoint ships no chat template; using the built-in Qwen2-VL-Instruct template.');
      return new ChatTemplate(QWEN2_VL_CHAT_TEMPLATE, true, specialTokenVars(tokenizerConfig));
    }
    return new ChatTemplate(chatTemplate, false, specialTokenVars(tokenizerConfig));
  }

  /** Renders messages to prompt text. @throws CheckpointError `ChatTemplate` if the template raises. */
  render(messages: readonly ChatMessage[], opts: RenderOptions = {}): string {
    // Plain objects with only the keys the template tests (`'text' in content`, …).
    const plain = messages.map((m) => ({
      role: m.role,
      content: typeof m.content === 'string' ? m.content : m.content.map((p) => ({ ...p })),
    }));
    try {
      return this.template.render({
        ...this.vars,
        messages: plain,
        add_generation_prompt: opts.addGenerationPrompt ?? true,
        add_vision_id: opts.addVisionId ?? false,
      });
    } catch (e) {
      throw new CheckpointError('ChatTemplate', `The chat template failed to render these messages: ${(e as Error).message}`);
    }
  }
}

/** The patch grid of one image as the vision encoder sees it (in 14-pixel patches). */
export interface ImageGrid {
  readonly gridT: number;
  readonly gridH: number;
  readonly gridW: number;
}

/** LLM tokens for one image: gridT * gridH * gridW / mergeSize^2. @throws Error if not whole. */
export function imageTokenCount(grid: ImageGrid, mergeSize: number): number {
  const perToken = mergeSize * mergeSize;
  const nPatches = grid.gridT * grid.gridH * grid.gridW;
  if (nPatches <= 0 || nPatches % perToken !== 0) {
    throw new Error(`image grid ${grid.gridT}x${grid.gridH}x${grid.gridW} is not a whole number of ${mergeSize}x${mergeSize} merge blocks`);
  }
  return nPatches / perToken;
}

export interface BuiltPrompt {
  /** The rendered template text (with one `<|image_pad|>` per image). */
  readonly text: string;
  /** Token ids with each image's pad expanded. */
  readonly tokenIds: number[];
  /** Per image, in order: the half-open range [start, end) of its pad tokens in `tokenIds`. */
  readonly imageSpans: readonly { readonly start: number; readonly end: number }[];
}

export interface BuildPromptParams {
  readonly template: ChatTemplate;
  readonly tokenizer: Tokenizer;
  readonly messages: readonly ChatMessage[];
  /** One grid per image, in the order the images appear in `messages`. */
  readonly imageGrids: readonly ImageGrid[];
  readonly mergeSize: number;
  /** `<|image_pad|>` (151655 in Qwen checkpoints; `ModelConfig.imageTokenId`). */
  readonly imageTokenId: number;
  readonly render?: RenderOptions;
}

/**
 * Renders, tokenizes once, then splices N copies of the image token for each image pad.
 * Tokenizing the short form and splicing gives the same ids as tokenizing the expanded
 * text, because the pad is a special token that the tokenizer always isolates.
 * @throws CheckpointError `ChatTemplate` when the number of pads differs from the number of grids.
 */
export function buildPrompt(p: BuildPromptParams): BuiltPrompt {
  const text = p.template.render(p.messages, p.render);
  const ids = p.tokenizer.encode(text);
  const nPads = ids.reduce((n, id) => n + (id === p.imageTokenId ? 1 : 0), 0);
  if (nPads !== p.imageGrids.length) {
    throw new CheckpointError('ChatTemplate',
      `The prompt has ${nPads} image placeholders but ${p.imageGrids.length} images were given. ` +
      'Remove literal "<|image_pad|>" from the question text, or check that each image has a {type: "image"} part.');
  }
  const tokenIds: number[] = [];
  const imageSpans: { start: number; end: number }[] = [];
  let image = 0;
  for (const id of ids) {
    if (id !== p.imageTokenId) {
      tokenIds.push(id);
      continue;
    }
    const n = imageTokenCount(p.imageGrids[image++], p.mergeSize);
    const start = tokenIds.length;
    for (let i = 0; i < n; i++) tokenIds.push(id);
    imageSpans.push({ start, end: start + n });
  }
  return { text, tokenIds, imageSpans };
}
