/**
 * The daemon's framing (server/src/message-reader.ts) over raw bytes: every malformed frame is
 * answered with a JSON-RPC error and the next request is still answered. With vscode-jsonrpc's
 * own reader, 7 of these left the stream stuck and malformed JSON got no answer at all.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { framedStreams, listen } from '../../server/src/main';

interface Frame { id?: number | null; result?: unknown; error?: { code: number; message: string } }

/** A daemon on in-memory streams, and the frames it writes, parsed. */
function daemon(maxMessageBytes?: number) {
  const input = new PassThrough(), output = new PassThrough();
  const server = listen(createConnection(ProposedFeatures.all, ...framedStreams(input, output, maxMessageBytes)));
  const frames: Frame[] = [];
  const waiters: (() => void)[] = [];
  let buf = Buffer.alloc(0);
  output.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const n = Number(/Content-Length: (\d+)/.exec(buf.toString('ascii', 0, end))![1]);
      if (buf.length < end + 4 + n) return;
      frames.push(JSON.parse(buf.toString('utf8', end + 4, end + 4 + n)) as Frame);
      buf = buf.subarray(end + 4 + n);
      for (const w of waiters.splice(0)) w();
    }
  });
  /** Resolves with the response to request `id`. */
  const response = (id: number) => new Promise<Frame>((resolve) => {
    const check = () => {
      const f = frames.find((x) => x.id === id);
      if (f) resolve(f); else waiters.push(check);
    };
    check();
  });
  return { input, frames, response, close: () => server.shutdown() };
}

const frame = (body: string | Buffer) => Buffer.concat([Buffer.from(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`), Buffer.from(body)]);
const stats = (id: number) => frame(JSON.stringify({ jsonrpc: '2.0', id, method: 'vlcache/stats', params: null }));

describe('JSON-RPC framing', () => {
  const hostile: [string, Buffer, number, RegExp][] = [
    ['malformed JSON', frame('{"jsonrpc":"2.0","id":1,"method":'), -32700, /Parse error/],
    ['invalid UTF-8 JSON', frame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), -32700, /Parse error/],
    ['a header without Content-Length', Buffer.from('Content-Type: application/json\r\n\r\n{}'), -32600, /without Content-Length/],
    ['a Content-Length that is not a number', Buffer.from('Content-Length: abc\r\n\r\n'), -32600, /not a whole number/],
    ['a negative Content-Length', Buffer.from('Content-Length: -5\r\n\r\n'), -32600, /not a whole number/],
    ['a garbage header line', Buffer.from('hello world\r\n\r\n'), -32600, /starts with "hello world"/],
    ['a Content-Length of 99999999999', Buffer.from('Content-Length: 99999999999\r\n\r\n'), -32600, /over the limit/],
    ['a header that never ends', Buffer.from(`Content-Length: 5${' '.repeat(10_000)}`), -32600, /header longer than/],
    ['a JSON array', frame('[1,2]'), -32600, /must be a JSON object/],
    ['JSON null', frame('null'), -32600, /must be a JSON object/],
  ];
  for (const [what, bytes, code, re] of hostile) {
    it(`answers ${what} with ${code} and goes on answering`, async () => {
      const d = daemon();
      d.input.write(bytes);
      d.input.write(stats(7));
      const r = await d.response(7);
      assert.ok(r.result, 'the request after the bad frame is answered');
      const err = d.frames.find((f) => f.id === null);
      assert.equal(err?.error?.code, code);
      assert.match(err!.error!.message, re);
      await d.close();
    });
  }

  it('skips a message over the size limit without buffering it and answers the next', async () => {
    // A 50 MB question used to block the event loop for 58 s and leave RSS at 2.3 GB.
    const d = daemon(1 << 20);
    const big = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'vlcache/ask', params: { images: [], question: 'x'.repeat(3 << 20) } });
    const bytes = frame(big);
    for (let i = 0; i < bytes.length; i += 65536) d.input.write(bytes.subarray(i, i + 65536));
    d.input.write(stats(8));
    assert.ok((await d.response(8)).result);
    // The over-size request itself is answered, so the client's call ends with a clear error.
    const answered = await d.response(3);
    assert.equal(answered.error?.code, -32600);
    assert.match(answered.error!.message, /over the limit of 1048576/);
    await d.close();
  });

  it('reads messages split at every byte and several in one chunk', async () => {
    const d = daemon();
    const two = Buffer.concat([stats(1), stats(2)]);
    for (let i = 0; i < two.length; i++) d.input.write(two.subarray(i, i + 1));
    d.input.write(Buffer.concat([stats(3), stats(4)]));
    for (const id of [1, 2, 3, 4]) assert.ok((await d.response(id)).result);
    assert.equal(d.frames.filter((f) => f.id === null).length, 0);
    await d.close();
  });
});
