/**
 * How fast one MatMul runs on a provider: the ceiling for prefill, which is
 * almost all MatMul. Prints TFLOP/s for the Qwen2.5-VL-3B prefill shapes.
 *   node --import tsx test/bench/matmul-roofline.ts webgpu
 */
import { performance } from 'node:perf_hooks';
import { Graph } from '../../kernels/onnx/graph';
import { Session, Tensor, f32 } from '../../server/src/engine/ort';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function main() {
  const device = (process.argv[2] ?? 'cpu') as 'cpu' | 'webgpu';
  const dir = mkdtempSync(join(tmpdir(), 'mm-'));
  for (const dt of ['float16', 'float32'] as const) {
    for (const [m, k, n] of [[2347, 2048, 11008], [2347, 11008, 2048], [9216, 1280, 3420], [1, 2048, 11008]]) {
      const g = new Graph('mm');
      const x = g.input('x', 'float32', [m, k]);
      // A constant weight (an initializer, like real weights): 0.01 in float16 is 0x211f.
      const w = g.constant(dt === 'float16'
        ? { dtype: 'float16', dims: [k, n], data: new Uint16Array(k * n).fill(0x211f) }
        : { dtype: 'float32', dims: [k, n], data: new Float32Array(k * n).fill(0.01) });
      let y = g.op('MatMul', [g.op('Cast', [x], { to: dt === 'float16' ? 10 : 1 }), w]);
      y = g.op('ReduceSum', [g.op('Cast', [y], { to: 1 })], { keepdims: 0 });
      g.output(y, 'y', 'float32', []);
      const p = join(dir, `mm-${dt}-${m}-${k}-${n}.onnx`);
      writeFileSync(p, g.toModel());
      const s = await Session.create(p, device);
      const feeds: Record<string, Tensor> = { x: f32(new Float32Array(m * k).fill(0.01), [m, k]) };
      await s.run(feeds);
      const reps = m === 1 ? 50 : 10;
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) await s.run(feeds);
      const ms = (performance.now() - t0) / reps;
      console.log(`${device} ${dt} [${m}x${k}]x[${k}x${n}]: ${ms.toFixed(2)} ms, ${((2 * m * k * n) / ms / 1e9).toFixed(1)} TFLOP/s`);
      await s.dispose();
    }
  }
}
main();
