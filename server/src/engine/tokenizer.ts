/**
 * The tokenizer seam: wraps `@huggingface/tokenizers` (tokenizer.json + tokenizer_config.json)
 * behind number[]-in, string-out methods, plus a streaming detokenizer for generation.
 *
 * Qwen tokenizers are byte-level BPE: each token stands for a run of UTF-8 bytes, so one
 * character (e.g. an emoji or a CJK ideograph) may be split across tokens. The stream
 * decoder therefore works on bytes and only emits text once a character is complete.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';

export interface DecodeOptions {
  /** Drop special tokens (`<|im_end|>`, `<|image_pad|>`, …) from the text. Default false. */
  readonly skipSpecialTokens?: boolean;
}

/** Turns generated token ids into text incrementally. */
export interface StreamDecoder {
  /** Adds one token; returns the newly completed text (possibly ''). */
  push(id: number): string;
  /** Ends the stream; returns any text still held back (an incomplete character becomes U+FFFD). */
  flush(): string;
}

type Json = Record<string, unknown>;

/**
 * GPT-2's byte <-> character table used by ByteLevel pre-tokenizers: printable Latin-1
 * bytes map to themselves and the other 68 bytes to U+0100 upwards, in byte order.
 */
function byteLevelCharToByte(): Map<string, number> {
  const m = new Map<string, number>();
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    m.set(String.fromCodePoint(printable ? b : next++), b);
  }
  return m;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class Tokenizer {
  private readonly hf: HfTokenizer;
  /**
   * The same tokenizer without its special tokens: user text goes through this one, so that
   * `<|im_end|>` typed by a user is seven ordinary tokens, never a turn boundary (what
   * transformers does with `split_special_tokens=True`). Non-special added tokens stay.
   */
  private readonly plain: HfTokenizer;
  /** Special token strings with their tokenizers.js strip flags, longest first. */
  private readonly specials: readonly { content: string; id: number; lstrip: boolean; rstrip: boolean }[];
  private readonly specialSplitter: RegExp | undefined;
  /** Added tokens (special or not) by id; their text is literal, not byte-level encoded. */
  private readonly addedById = new Map<number, string>();
  private readonly specialIds = new Set<number>();
  private readonly byteLevel: boolean;
  private charToByte: Map<string, number> | undefined;
  private readonly utf8 = new TextEncoder();

  /**
   * @param tokenizerJson parsed tokenizer.json
   * @param tokenizerConfig parsed tokenizer_config.json ({} when absent)
   * @throws Error when the library cannot build the tokenizer (unsupported components).
   */
  constructor(tokenizerJson: Json, tokenizerConfig: Json = {}) {
    this.hf = new HfTokenizer({ added_tokens: [], ...tokenizerJson }, tokenizerConfig);
    const added = Array.isArray(tokenizerJson.added_tokens) ? (tokenizerJson.added_tokens as Json[]) : [];
    for (const t of added) {
      if (typeof t.id !== 'number' || typeof t.content !== 'string') continue;
      this.addedById.set(t.id, t.content);
      if (t.special === true) this.specialIds.add(t.id);
    }
    // tokenizer_config may promote further tokens to special, as transformers does.
    const extra = Array.isArray(tokenizerConfig.additional_special_tokens) ? tokenizerConfig.additional_special_tokens : [];
    for (const s of extra) {
      const id = typeof s === 'string' ? this.hf.token_to_id(s) : undefined;
      if (id !== undefined) this.specialIds.add(id);
    }
    const specialEntries = added.filter((t) => typeof t.id === 'number' && this.specialIds.has(t.id) && typeof t.content === 'string'
      && t.content !== '');
    this.plain = new HfTokenizer({ ...tokenizerJson, added_tokens: added.filter((t) => !specialEntries.includes(t)) },
      { ...tokenizerConfig, additional_special_tokens: [] });
    this.specials = specialEntries
      .map((t) => ({ content: t.content as string, id: t.id as number, lstrip: t.lstrip === true, rstrip: t.rstrip === true }))
      .sort((a, b) => b.content.length - a.content.length);
    this.specialSplitter = this.specials.length === 0 ? undefined
      : new RegExp(`(${this.specials.map((t) => escapeRegExp(t.content)).join('|')})`, 'u');
    const decoder = tokenizerJson.decoder as Json | null | undefined;
    this.byteLevel = decoder?.type === 'ByteLevel';
  }

  /**
   * Encodes text to ids. Special and added tokens written in the text (`<|im_start|>`,
   * `<|image_pad|>`) become their single ids. No BOS/EOS is added: chat templates already
   * spell out every special token, as transformers' apply_chat_template assumes.
   */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Encodes text as text: a special-token string in it (`<|im_end|>`, `<|image_pad|>`) is
   * tokenized like any other characters and never becomes its control id. For text without
   * special-token strings this gives exactly `encode(text)`.
   */
  encodeText(text: string): number[] {
    if (text.length === 0) return [];
    return this.plain.encode(text, { add_special_tokens: false }).ids;
  }

  /** The special token strings (`<|im_start|>`, …), longest first. */
  get specialTokens(): readonly string[] {
    return this.specials.map((t) => t.content);
  }

  /**
   * Encodes `text` in which every special-token string is a real control token (text that a
   * chat template wrote), and every run between them is `encodeText(toText(run))`. The strip
   * flags of special tokens trim their neighbours as tokenizers does.
   */
  encodeSplitAtSpecials(text: string, toText: (run: string) => string = (r) => r): number[] {
    // split() with one capture group alternates [run, special, run, special, …, run].
    const parts = this.specialSplitter ? text.split(this.specialSplitter) : [text];
    const byContent = new Map(this.specials.map((t) => [t.content, t]));
    for (let i = 1; i < parts.length; i += 2) {
      const t = byContent.get(parts[i])!;
      if (t.lstrip) parts[i - 1] = parts[i - 1].trimEnd();
      if (t.rstrip) parts[i + 1] = parts[i + 1].trimStart();
    }
    const ids: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (i % 2 === 1) ids.push(byContent.get(parts[i])!.id);
      else for (const id of this.encodeText(toText(parts[i]))) ids.push(id);
    }
    return ids;
  }

  /** Decodes ids to text; unknown ids decode as the model's unk token (or nothing). */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    return this.hf.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** The id of a token string (vocabulary or added token), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** The token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** The id of a token that must exist, e.g. `<|image_pad|>`. @throws Error naming the token. */
  requireId(token: string): number {
    const id = this.tokenToId(token);
    if (id === undefined) throw new Error(`the tokenizer has no ${token} token; is tokenizer.json from a Qwen2-VL model?`);
    return id;
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Starts a streaming decode; see `StreamDecoder`. */
  streamDecoder(opts: DecodeOptions = {}): StreamDecoder {
    return this.byteLevel ? this.byteStream(opts) : this.diffStream(opts);
  }

  /** Byte-exact streaming for ByteLevel decoders: tokens -> bytes -> incremental UTF-8. */
  private byteStream(opts: DecodeOptions): StreamDecoder {
    const table = (this.charToByte ??= byteLevelCharToByte());
    // `stream: true` makes TextDecoder hold back the bytes of an unfinished character.
    const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
    return {
      push: (id) => {
        if (opts.skipSpecialTokens && this.specialIds.has(id)) return '';
        const added = this.addedById.get(id);
        if (added !== undefined) return utf8.decode(this.utf8.encode(added), { stream: true });
        const token = this.hf.id_to_token(id);
        if (token === undefined) return '';
        const bytes = new Uint8Array(token.length);
        let n = 0;
        for (const ch of token) {
          const b = table.get(ch);
          if (b !== undefined) bytes[n++] = b;
        }
        return utf8.decode(bytes.subarray(0, n), { stream: true });
      },
      flush: () => utf8.decode(),
    };
  }

  /**
   * Generic streaming for other decoders: decode a short window of recent ids and emit
   * what it adds over the previous window, holding back text that ends in U+FFFD (an
   * incomplete character). The window keeps each step O(1) in the stream length.
   */
  private diffStream(opts: DecodeOptions): StreamDecoder {
    const ids: number[] = [];
    let prefix = 0; // ids[prefix, read) were decoded as context for the emitted text
    let read = 0; // ids[0, read) have been emitted
    const step = (final: boolean): string => {
      const before = this.decode(ids.slice(prefix, read), opts);
      const after = this.decode(ids.slice(prefix), opts);
      if (after.length > before.length && (final || !after.endsWith('\uFFFD'))) {
        prefix = read;
        read = ids.length;
        return after.slice(before.length);
      }
      return '';
    };
    return {
      push: (id) => {
        ids.push(id);
        return step(false);
      },
      flush: () => step(true),
    };
  }
}
