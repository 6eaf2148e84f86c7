/**
 * A run that cannot allocate its memory is a DeviceMemoryError naming the device and the graph, never an internal
 * error, and the session stays usable. The failure is real: ONNX Runtime's CPU arena asked for 4 TiB (an Expand to
 * 2^40 floats), on onnxruntime-node's JS API and through the C API (VLCACHE_NATIVE_CPU, the path CUDA takes).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResponseError } from 'vscode-languageserver-protocol';
import { Graph } from '../../../kernels/onnx/graph';
import { DeviceMemoryError, Session, classifyRunError, i64 } from '../../../server/src/engine/ort';
import { toResponseError } from '../../../server/src/convert';
import { ErrorCodes } from '../../../server/src/protocol/errors';

/** y [n] = 1 broadcast to `shape`: as large as asked. Written as a graph file named as the engine names its graphs. */
function expandGraph(dir: string): string {
  const g = new Graph('oom');
  const shape = g.input('shape', 'int64', [1]);
  g.output(g.op('Expand', [g.f32(1), shape]), 'y', 'float32', ['n']);
  const path = join(dir, 'vlcache-llm-float32-0123abcd.onnx');
  writeFileSync(path, g.toModel());
  return path;
}

describe('out of memory', () => {
  for (const nativeCpu of ['0', '1']) {
    it(`is a DeviceMemoryError with the size asked for, and the session runs again (${nativeCpu === '1' ? 'C API' : 'JS API'})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vlcache-oom-'));
      const saved = process.env.VLCACHE_NATIVE_CPU;
      process.env.VLCACHE_NATIVE_CPU = nativeCpu;
      try {
        const s = await Session.create(expandGraph(dir), 'cpu');
        assert.equal(s.native, nativeCpu === '1');
        await assert.rejects(s.run({ shape: i64([2 ** 40]) }), (e: unknown) => {
          assert.ok(e instanceof DeviceMemoryError, String(e));
          assert.equal(e.requestedBytes, 2 ** 42);
          assert.match(e.message, /^The cpu device ran out of memory running the language model \(4194304 MiB more were asked for\)\. .*vlcache\.gpu\.kvArenaRows/);
          return true;
        });
        const ok = await s.run({ shape: i64([3]) });
        assert.deepEqual(Array.from(ok.y.data as Float32Array), [1, 1, 1]);
        await s.dispose();
      } finally {
        if (saved === undefined) delete process.env.VLCACHE_NATIVE_CPU;
        else process.env.VLCACHE_NATIVE_CPU = saved;
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("recognises each provider's wording and leaves other errors alone", () => {
    assert.ok(classifyRunError(new Error('CUDA failure 2: out of memory ; GPU=0'), 'cuda', 'g') instanceof DeviceMemoryError);
    assert.ok(classifyRunError(new Error('std::bad_alloc'), 'cpu', 'g') instanceof DeviceMemoryError);
    const other = new Error('Non-zero status code returned while running Gather node: indices out of bounds');
    assert.equal(classifyRunError(other, 'cuda', 'g'), other);
  });

  it('reaches the editor as the OutOfMemory protocol error with the same message', () => {
    const e = new DeviceMemoryError('cuda', 'the vision encoder', 2 ** 31);
    const r = toResponseError(e) as ResponseError<unknown>;
    assert.equal(r.code, ErrorCodes.OutOfMemory);
    assert.match(r.message, /^The cuda device ran out of GPU memory running the vision encoder \(2048 MiB more were asked for\)/);
  });
});
