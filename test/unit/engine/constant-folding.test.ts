/**
 * A weight cast whose result exceeds 1 GiB is folded at load like every other, on both doors (ONNX
 * Runtime skips such nodes by default; ort.ts SESSION_CONFIG raises the limit). Without it the 3B's
 * float32 embedding table (1.24 GB) was cast again on every CPU run. The check is ONNX Runtime's own
 * profile (VLCACHE_ORT_PROFILE): a folded Cast never runs.
 * The weight is a sparse file of zeros (no disk, 539 MB read); the folded float32 copy is 1.08 GB.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Graph } from '../../../kernels/onnx/graph';
import { Session, f32 } from '../../../server/src/engine/ort';

const ROWS = 2 ** 17;
const COLS = 2056; // ROWS * COLS * 4 bytes = 1.078 GB > 1 GiB

/** y [1, ROWS] = x [1, COLS] @ Cast(w), w [COLS, ROWS] bfloat16 from an external file. */
function castGraph(dir: string): string {
  const bytes = ROWS * COLS * 2;
  const fd = openSync(join(dir, 'w.bin'), 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
  const g = new Graph('fold');
  const x = g.input('x', 'float32', [1, COLS]);
  const w = g.external('w', 'bfloat16', [COLS, ROWS], 'w.bin', 0, bytes);
  g.output(g.op('MatMul', [x, g.op('Cast', [w], { to: 1 })]), 'y', 'float32', [1, ROWS]);
  const path = join(dir, 'vlcache-llm-float32-0123abcd.onnx');
  writeFileSync(path, g.toModel({ opset: 21 }));
  return path;
}

/** The operators ONNX Runtime's profile says ran, from every profile file in `dir`. */
function opsThatRan(dir: string): Set<string> {
  const ops = new Set<string>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    for (const e of JSON.parse(readFileSync(join(dir, f), 'utf8')) as { cat?: string; args?: { op_name?: string } }[]) {
      if (e.cat === 'Node' && e.args?.op_name) ops.add(e.args.op_name);
    }
  }
  return ops;
}

describe('constant folding of large weights', () => {
  for (const nativeCpu of ['0', '1']) {
    it(`casts a weight of over 1 GiB once, at load (${nativeCpu === '1' ? 'C API' : 'JS API'})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vlcache-fold-'));
      const profiles = join(dir, 'profiles');
      const saved = { native: process.env.VLCACHE_NATIVE_CPU, profile: process.env.VLCACHE_ORT_PROFILE };
      process.env.VLCACHE_NATIVE_CPU = nativeCpu;
      process.env.VLCACHE_ORT_PROFILE = profiles;
      try {
        mkdirSync(profiles);
        const s = await Session.create(castGraph(dir), 'cpu');
        const out = await s.run({ x: f32(new Float32Array(COLS).fill(1), [1, COLS]) });
        assert.deepEqual(out.y.dims, [1, ROWS]);
        await s.dispose();
        const ops = opsThatRan(profiles);
        assert.ok(ops.has('MatMul') || ops.has('FusedMatMul') || ops.has('Gemm'), `the profile names the MatMul: ${[...ops]}`);
        assert.ok(!ops.has('Cast'), `the Cast ran at run time: ${[...ops]}`);
      } finally {
        for (const [k, v] of [['VLCACHE_NATIVE_CPU', saved.native], ['VLCACHE_ORT_PROFILE', saved.profile]] as const) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
