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
import { Environment, Interpreter, Template } from '@huggingface/jinja';
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

/**
 * Limits on one render, so that a hostile template (`range(1000000000)`, nested loops, a string
 * doubled in a loop) fails with a clear error instead of hanging the daemon or exhausting V8.
 * A Qwen render of ten turns takes a few hundred steps and a few KB.
 */
export const TEMPLATE_LIMITS = {
  /** Evaluated AST nodes per render, plus 1,000 per message. */
  steps: 200_000,
  /** Length of any one list built while rendering (`range()` included). */
  listItems: 100_000,
  /** Length of any one string built while rendering, beyond the messages' own text. */
  stringChars: 4_000_000,
} as const;

class TemplateLimitError extends Error {}

/** jinja's interpreter as far as it is used here (its .d.ts files do not resolve under NodeNext). */
interface JinjaInterpreter {
  evaluate(statement: unknown, environment: unknown): unknown;
  run(program: unknown): { value: unknown };
}
const InterpreterBase = Interpreter as unknown as new (env: unknown) => JinjaInterpreter;

/** An interpreter that counts evaluation steps and checks every value it builds. */
class LimitedInterpreter extends InterpreterBase {
  private steps = 0;

  /** Counts `n` steps of work done outside evaluate (a range's items). */
  charge(n: number): void {
    this.steps += n;
    if (this.steps > this.maxSteps) throw new TemplateLimitError(`it ran more than ${this.maxSteps} steps`);
  }

  constructor(env: unknown, private readonly maxSteps: number, private readonly maxChars: number) {
    super(env);
  }

  override evaluate(statement: unknown, environment: unknown): unknown {
    if (++this.steps > this.maxSteps) throw new TemplateLimitError(`it ran more than ${this.maxSteps} steps`);
    const v = super.evaluate(statement, environment);
    const value = (v as { value?: unknown }).value;
    if (typeof value === 'string' && value.length > this.maxChars) {
      throw new TemplateLimitError(`it built a string of more than ${this.maxChars} characters`);
    }
    if (Array.isArray(value) && value.length > TEMPLATE_LIMITS.listItems) {
      throw new TemplateLimitError(`it built a list of more than ${TEMPLATE_LIMITS.listItems} items`);
    }
    return v;
  }
}

/**
 * jinja's `range`, refusing more than `TEMPLATE_LIMITS.listItems` items before it allocates
 * them, and charging each item as a step (a loop that builds a range per iteration is work).
 */
function boundedRange(charge: (n: number) => void): (start: number, stop?: number, step?: number) => number[] {
  return (start, stop, step = 1) => {
    if (stop === undefined) [start, stop] = [0, start];
    if (step === 0) throw new Error('range() step must not be zero');
    const n = Math.max(0, Math.ceil((stop - start) / step));
    if (!Number.isFinite(n) || n > TEMPLATE_LIMITS.listItems) {
      throw new TemplateLimitError(`range() of ${n} items is over the limit of ${TEMPLATE_LIMITS.listItems}`);
    }
    charge(n);
    return Array.from({ length: n }, (_, i) => start + i * step);
  };
}

/** The globals jinja's own Template.render sets up (its setupGlobals is not exported). */
function globals(charge: (n: number) => void): Record<string, unknown> {
  return {
    false: false, true: true, none: null, False: false, True: true, None: null,
    raise_exception: (message: unknown) => { throw new Error(String(message)); },
    range: boundedRange(charge),
    strftime_now: (format: string) => strftimeNow(new Date(), format),
  };
}

/** The subset of strftime that jinja's `strftime_now` supports: %Y %m %d %b %B %H %M %%. */
function strftimeNow(d: Date, format: string): string {
  const pad2 = (n: number) => String(n).padStart(2, '0');
  return format.replace(/%[YmdbBHM%]/g, (t) => {
    switch (t) {
      case '%Y': return String(d.getFullYear());
      case '%m': return pad2(d.getMonth() + 1);
      case '%d': return pad2(d.getDate());
      case '%b': return d.toLocaleString('en-US', { month: 'short' });
      case '%B': return d.toLocaleString('en-US', { month: 'long' });
      case '%H': return pad2(d.getHours());
      case '%M': return pad2(d.getMinutes());
      default: return '%';
    }
  });
}

/**
 * Stands in for special-token strings inside message text while the template renders: each
 * distinct one becomes a code point of Supplementary Private Use Area-B, so that after
 * rendering every real special token in the text is one the template wrote. Code points of
 * that area already in the messages are stood in for too, so a placeholder is never forged.
 */
class SpecialTextGuard {
  private static readonly BASE = 0x100000;
  private readonly toChar = new Map<string, string>();
  private readonly fromChar = new Map<string, string>();
  private readonly match: RegExp;

  constructor(specials: readonly string[]) {
    const literals = specials.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.match = new RegExp([...literals, '[\\u{100000}-\\u{10FFFF}]'].join('|'), 'gu');
  }

  escape(text: string): string {
    return text.replace(this.match, (m) => {
      let c = this.toChar.get(m);
      if (c === undefined) {
        if (this.toChar.size >= 0xfffe) throw new Error('the question has too many distinct private-use characters');
        c = String.fromCodePoint(SpecialTextGuard.BASE + this.toChar.size);
        this.toChar.set(m, c);
        this.fromChar.set(c, m);
      }
      return c;
    });
  }

  unescape(text: string): string {
    return this.toChar.size === 0 ? text : text.replace(/[\u{100000}-\u{10FFFF}]/gu, (c) => this.fromChar.get(c) ?? c);
  }
}

/** Messages with every text run passed through `f`. */
function mapText(messages: readonly ChatMessage[], f: (text: string) => string): ChatMessage[] {
  return messages.map((m) => ({
    role: m.role,
    content: typeof m.content === 'string' ? f(m.content)
      : m.content.map((p) => (p.type === 'text' ? { type: 'text' as const, text: f(p.text) } : p)),
  }));
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
    const nTextChars = messages.reduce((n, m) => n + (typeof m.content === 'string' ? m.content.length
      : m.content.reduce((k, p) => k + (p.type === 'text' ? p.text.length : 0), 0)), 0);
    try {
      const env = new Environment();
      const interpreter = new LimitedInterpreter(env, TEMPLATE_LIMITS.steps + 1000 * messages.length,
        TEMPLATE_LIMITS.stringChars + 2 * nTextChars);
      const items: Record<string, unknown> = {
        ...globals((n) => interpreter.charge(n)),
        ...this.vars,
        messages: plain,
        add_generation_prompt: opts.addGenerationPrompt ?? true,
        add_vision_id: opts.addVisionId ?? false,
      };
      for (const [key, value] of Object.entries(items)) env.set(key, value);
      const out = interpreter.run(this.template.parsed).value;
      if (typeof out !== 'string') throw new Error('it did not produce text');
      return out;
    } catch (e) {
      if (e instanceof TemplateLimitError || e instanceof RangeError) {
        throw new CheckpointError('ChatTemplate', `The model's chat template was stopped: ${e.message}. ` +
          'Use the chat template the model was published with (tokenizer_config.json / chat_template.json).');
      }
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
 *
 * NOTE: message text is tokenized as text. Special tokens appear only where the template
 * writes them; `<|im_end|>` or `<|image_pad|>` typed in a question or an earlier answer are
 * ordinary characters. This differs on purpose from transformers' default (which parses
 * them in the rendered text, so a question can open a forged system turn) and equals its
 * `split_special_tokens=True` for the messages; without such strings the ids are identical.
 * @throws CheckpointError `ChatTemplate` when the number of pads differs from the number of grids.
 */
export function buildPrompt(p: BuildPromptParams): BuiltPrompt {
  const guard = new SpecialTextGuard(p.tokenizer.specialTokens);
  const rendered = p.template.render(mapText(p.messages, (t) => guard.escape(t)), p.render);
  const text = guard.unescape(rendered);
  const ids = p.tokenizer.encodeSplitAtSpecials(rendered, (run) => guard.unescape(run));
  const nPads = ids.reduce((n, id) => n + (id === p.imageTokenId ? 1 : 0), 0);
  if (nPads !== p.imageGrids.length) {
    throw new CheckpointError('ChatTemplate',
      `The prompt has ${nPads} image placeholders but ${p.imageGrids.length} images were given. ` +
      'Check that the chat template writes one <|image_pad|> per {type: "image"} part.');
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
