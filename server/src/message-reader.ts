/**
 * The daemon's JSON-RPC framing over a byte stream (`Content-Length: N\r\n\r\n` + N bytes of
 * JSON), strict where vscode-jsonrpc's reader gives up: with that reader a header without a
 * length, a negative or huge length, or a body that is not JSON left the stream stuck (the
 * process lived and never answered again), and malformed JSON got no answer at all.
 *
 * Here every framing error is answered (through `reply`, the connection's own writer, so
 * frames never interleave) and the stream recovers:
 * - a body that is not JSON answers -32700 Parse error; one that is not an object (or a
 *   batch, which LSP does not use) -32600 Invalid Request; both with id null;
 * - a header block without a valid Content-Length answers -32600; the bytes up to the next
 *   `Content-Length:` header are skipped, which is where the next message starts;
 * - a message over `maxMessageBytes` answers -32600 (to its request's id when the body's
 *   first 4 KB show it, so the client's request ends with a clear error) and its declared
 *   bytes are skipped unread (nothing is buffered); a length no client could mean (over 4 GiB) resynchronises
 *   on the next header instead.
 */
import { AbstractMessageReader, type DataCallback, type Disposable, type Message } from 'vscode-languageserver-protocol';

export interface FramingError {
  readonly code: -32700 | -32600;
  readonly message: string;
}

export interface FramedReaderOptions {
  /** The largest message body accepted, in bytes. */
  readonly maxMessageBytes: number;
  /** Sends a JSON-RPC error response, with the request's id when it is known (else null). */
  readonly reply: (error: FramingError, id?: number | string | null) => void;
}

/** Default cap on one message: far above any real request (a question is capped at 100,000 characters). */
export const MAX_MESSAGE_BYTES = 16 << 20;
const MAX_HEADER_BYTES = 8 << 10;
const MAX_SKIPPABLE = 2 ** 32;
const HEADER_START = /content-(?:length|type)\s*:/i;
const CRLF2 = Buffer.from('\r\n\r\n');

/** `skip`: an over-size body being discarded; its first bytes are kept to find the request's id for the answer. */
type State = { kind: 'header' } | { kind: 'body'; length: number } | { kind: 'skip'; left: number; length: number; head?: Buffer }
  | { kind: 'resync' };

/** Bytes of an over-size body looked at for its id (vscode-jsonrpc writes "jsonrpc", then "id", first). */
const ID_PEEK_BYTES = 4096;

export class FramedMessageReader extends AbstractMessageReader {
  private buffer: Buffer = Buffer.alloc(0);
  private state: State = { kind: 'header' };
  private callback?: DataCallback;

  constructor(private readonly input: NodeJS.ReadableStream, private readonly opts: FramedReaderOptions) {
    super();
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    const onData = (chunk: Buffer | string) => this.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    const onError = (e: Error) => this.fireError(e);
    const onClose = () => this.fireClose();
    this.input.on('data', onData);
    this.input.on('error', onError);
    this.input.on('end', onClose);
    this.input.on('close', onClose);
    return {
      dispose: () => {
        this.input.off('data', onData);
        this.input.off('error', onError);
        this.input.off('end', onClose);
        this.input.off('close', onClose);
      },
    };
  }

  /** Feeds bytes; emits every complete message they finish. */
  private push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const s = this.state;
      if (s.kind === 'skip') {
        const n = Math.min(s.left, this.buffer.length);
        if (s.head === undefined) {
          // Answer once the body's first bytes (or all of a short one) are here, with the request's id when it shows.
          const need = Math.min(ID_PEEK_BYTES, s.left);
          if (this.buffer.length < need) return;
          this.tooLarge(s.length, this.buffer.subarray(0, need));
          s.head = this.buffer.subarray(0, 0);
        }
        this.buffer = this.buffer.subarray(n);
        if (n < s.left) { this.state = { ...s, left: s.left - n }; return; }
        this.state = { kind: 'header' };
      } else if (s.kind === 'resync') {
        const at = this.buffer.toString('latin1').search(HEADER_START);
        if (at < 0) {
          // Keep a tail that may hold the start of a header split across chunks.
          this.buffer = this.buffer.subarray(Math.max(0, this.buffer.length - 32));
          return;
        }
        this.buffer = this.buffer.subarray(at);
        this.state = { kind: 'header' };
      } else if (s.kind === 'header') {
        if (!this.header()) return;
      } else {
        if (this.buffer.length < s.length) return;
        const body = this.buffer.subarray(0, s.length);
        this.buffer = this.buffer.subarray(s.length);
        this.state = { kind: 'header' };
        this.deliver(body);
      }
    }
  }

  /** Parses one header block; false when more bytes are needed. */
  private header(): boolean {
    // Blank lines and stray bytes before a header are skipped silently only if they are whitespace.
    const lead = this.buffer.toString('latin1', 0, Math.min(this.buffer.length, MAX_HEADER_BYTES)).search(/\S/);
    if (lead > 0) this.buffer = this.buffer.subarray(lead);
    if (lead < 0) {
      if (this.buffer.length >= MAX_HEADER_BYTES) this.buffer = Buffer.alloc(0);
      return false;
    }
    const end = this.buffer.indexOf(CRLF2);
    if (end < 0) {
      if (this.buffer.length <= MAX_HEADER_BYTES) return false;
      // Drop the over-long block, so that resynchronising does not find its own header again.
      this.buffer = this.buffer.subarray(MAX_HEADER_BYTES);
      this.framing(`a header longer than ${MAX_HEADER_BYTES} bytes`);
      return true;
    }
    const text = this.buffer.toString('ascii', 0, end);
    this.buffer = this.buffer.subarray(end + 4);
    if (!HEADER_START.test(text.slice(0, 20))) {
      this.framing(`a header block that starts with ${JSON.stringify(text.slice(0, 40))}`);
      return true;
    }
    let length: number | undefined;
    for (const line of text.split('\r\n')) {
      const m = /^content-length\s*:\s*(.*)$/i.exec(line);
      if (m) length = /^\d{1,16}$/.test(m[1].trim()) ? Number(m[1].trim()) : Number.NaN;
    }
    if (length === undefined || !Number.isSafeInteger(length)) {
      this.framing(length === undefined ? 'a header without Content-Length' : 'a Content-Length that is not a whole number');
      return true;
    }
    if (length > this.opts.maxMessageBytes) {
      if (length <= MAX_SKIPPABLE) {
        this.state = { kind: 'skip', left: length, length };
      } else {
        this.tooLarge(length, Buffer.alloc(0));
        this.state = { kind: 'resync' };
      }
      return true;
    }
    this.state = { kind: 'body', length };
    return true;
  }

  /** Answers an over-size message, to its request when `head` (the body's start) shows a top-level id. */
  private tooLarge(length: number, head: Buffer): void {
    const m = /^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d{1,15}|"[^"\\]{0,200}")/.exec(head.toString('utf8'));
    const id = m ? JSON.parse(m[1]) as number | string : null;
    this.opts.reply({ code: -32600, message: `Invalid Request: a message of ${length} bytes is over the limit of ${this.opts.maxMessageBytes}` }, id);
  }

  /** Answers a framing error and resynchronises on the next header. */
  private framing(what: string): void {
    this.opts.reply({ code: -32600, message: `Invalid Request: framing error (${what}); skipped to the next Content-Length header` });
    this.state = { kind: 'resync' };
  }

  private deliver(body: Buffer): void {
    let msg: unknown;
    try {
      msg = JSON.parse(body.toString('utf8'));
    } catch (e) {
      this.opts.reply({ code: -32700, message: `Parse error: ${(e as Error).message}` });
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      this.opts.reply({ code: -32600, message: 'Invalid Request: a message must be a JSON object' });
      return;
    }
    this.callback?.(msg as Message);
  }
}
