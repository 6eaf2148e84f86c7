/**
 * How fast MatMul runs on a provider: the ceiling for prefill, which is almost
 * all MatMul. A chain of 8 MatMuls [m, k] x [k, k] inside one graph, so the
 * input upload is amortised. Prints TFLOP/s for Qwen2.5-VL-3B-like widths.
 *   node --import tsx test/bench/matmul-roofline.ts webgpu
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Graph } from '../../kernels/onnx/graph';
import { Session, Tensor, f32 } from '../../server/src/engine/ort';

const CHAIN = 8;

async function main(): Promise<void> {
  const device = (process.argv[2] ?? 'cpu') as 'cpu' | 'webgpu';
  const dir = mkdtempSync(join(tmpdir(), 'mm-'));
  for (const dt of ['float16', 'float32'] as const) {
    for (const [m, k] of [[2347, 2048], [9216, 1280], [1, 2048]]) {
      const g = new Graph('mm');
      // A constant weight (an initializer, like real weights) scaled so the chain stays finite.
      const v = 1 / k;
      const w = g.constant(dt === 'float16'
        ? { dtype: 'float16', dims: [k, k], data: new Uint16Array(k * k).fill(f16bits(v)) }
        : { dtype: 'float32', dims: [k, k], data: new Float32Array(k * k).fill(v) });
      let y = g.op('Cast', [g.input('x', 'float32', [m, k])], { to: dt === 'float16' ? 10 : 1 });
      for (let i = 0; i < CHAIN; i++) y = g.op('MatMul', [y, w]);
      await timeChain(g, y, join(dir, `mm-${dt}-${m}-${k}.onnx`), device, m, k, dt);
    }
  }
  // The same chains through com.microsoft.MatMulNBits (4-bit weights, block 32), the kernel ONNX Runtime's
  // WebGPU provider tunes for LLMs: is it faster than a float16 MatMul at prefill sizes?
  for (const [m, k] of [[2347, 2048], [9216, 1280], [1, 2048]]) {
    const g = new Graph('mmnbits');
    const block = 32, nBlocks = k / block;
    const packed = g.constant({ dtype: 'uint8', dims: [k, nBlocks, block / 2], data: new Uint8Array(k * nBlocks * block / 2).fill(0x98) });
    const scales = g.constant({ dtype: 'float16', dims: [k * nBlocks], data: new Uint16Array(k * nBlocks).fill(f16bits(1 / k)) });
    let y = g.op('Cast', [g.input('x', 'float32', [m, k])], { to: 10 });
    for (let i = 0; i < CHAIN; i++) {
      y = g.op('MatMulNBits', [y, packed, scales], { K: k, N: k, bits: 4, block_size: block, accuracy_level: 4 }, 'com.microsoft');
    }
    try {
      await timeChain(g, y, join(dir, `mmnbits-${m}-${k}.onnx`), device, m, k, 'int4 (MatMulNBits)');
    } catch (e) {
      console.log(`${device} int4 (MatMulNBits) [${m}x${k}]: failed: ${(e as Error).message.split('\n')[0]}`);
    }
  }
}

/** Finishes the chain graph (sum of the output), then times 10 runs after one warm-up and prints TFLOP/s. */
async function timeChain(g: Graph, y: string, path: string, device: 'cpu' | 'webgpu', m: number, k: number, label: string): Promise<void> {
  g.output(g.op('ReduceSum', [g.op('Cast', [y], { to: 1 })], { keepdims: 0 }), 'y', 'float32', []);
  writeFileSync(path, g.toModel());
  const s = await Session.create(path, device);
  const feeds: Record<string, Tensor> = { x: f32(new Float32Array(m * k).fill(1), [m, k]) };
  await s.run(feeds);
  const reps = 10;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await s.run(feeds);
  const ms = (performance.now() - t0) / reps;
  console.log(`${device} ${label} ${CHAIN} x [${m}x${k}]x[${k}x${k}]: ${ms.toFixed(2)} ms, ` +
    `${((2 * CHAIN * m * k * k) / ms / 1e9).toFixed(1)} TFLOP/s`);
  await s.dispose();
}

function f16bits(x: number): number {
  // Positive normal numbers only (enough here): exponent and 10-bit mantissa, rounded.
  const e = Math.floor(Math.log2(x));
  return ((e + 15) << 10) | Math.round((x / 2 ** e - 1) * 1024);
}

void main();
