/**
 * The C-API door of engine/ort.ts (ONNX Runtime's C API through koffi): a session from
 * a graph built by kernels/onnx, an IoBinding with ORT-allocated input and pre-allocated
 * output tensors, run and read back — the same numbers as onnxruntime-node's JS API on
 * the same graph (CPU provider, one thread, so both run the same kernels in the same order);
 * ONNX Runtime's errors come back as Errors with its message, never a crash.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../../kernels/onnx/graph';
import { CapiSession, CapiTensor, Session, createCapiSession, devicesToTry, f32, runtime, toFloat32 } from '../../../server/src/engine/ort';

/** y[b, 4] = Softmax(Relu(x[b, 3] · W[3, 4] + bias)) · 2, and n = Shape(x)[0] as int64 — two outputs of two dtypes. */
function smallGraph(): Uint8Array {
  const g = new Graph('capi-test');
  const x = g.input('x', 'float32', ['b', 3]);
  const w = g.f32([0.5, -1, 2, 0.25, 1.5, 0.75, -0.5, 1, -2, 0.125, 1, 3], [3, 4]);
  const bias = g.f32([0.1, -0.2, 0.3, 0.05], [4]);
  const h = g.op('Relu', [g.op('Add', [g.op('MatMul', [x, w]), bias])]);
  g.output(g.op('Mul', [g.op('Softmax', [h], { axis: -1 }), g.f32(2)]), 'y', 'float32', ['b', 4]);
  g.output(g.op('Slice', [g.op('Shape', [x]), g.i64([0]), g.i64([1])]), 'n', 'int64', [1]);
  return g.toModel();
}

describe('ONNX Runtime C API (koffi) vs the JS API', () => {
  const model = smallGraph();
  const xData = Float32Array.from({ length: 5 * 3 }, (_, i) => Math.sin(i * 1.7) * 3);

  it('reports the runtime version onnxruntime-node ships', () => {
    assert.equal(CapiSession.version(), runtime.ortVersion);
  });

  it('runs a bound input into pre-allocated outputs and gives the JS API numbers exactly', async () => {
    const js = await Session.create(model, 'cpu', { threads: 1 });
    const ref = await js.run({ x: f32(xData, [5, 3]) });
    const refY = await toFloat32(ref.y);
    await js.dispose();

    const s = createCapiSession(model, 'cpu', { threads: 1 });
    const x = CapiTensor.alloc('float32', [5, 3]);
    const y = CapiTensor.alloc('float32', [5, 4]);
    const n = CapiTensor.alloc('int64', [1]);
    try {
      x.write(xData);
      y.write(new Float32Array(20).fill(NaN)); // every element must be written by the run
      await s.run({ x }, [{ name: 'y', into: y }, { name: 'n', into: n }], {}, { sync: true });
      const got = y.read() as Float32Array;
      assert.equal(got.length, 20);
      assert.ok(got.every(Number.isFinite));
      assert.deepEqual(Array.from(got), Array.from(refY));
      assert.deepEqual(Array.from(n.read() as BigInt64Array), [5n]);
      // Rows of 2·softmax sum to 2: the run really computed, it did not just copy.
      for (let r = 0; r < 5; r++) assert.ok(Math.abs(got.slice(r * 4, r * 4 + 4).reduce((a, b) => a + b, 0) - 2) < 1e-5);

      // The same bound tensors run again with new input data give the new answer in place.
      x.write(xData.map((v) => -v));
      await s.run({ x }, [{ name: 'y', into: y }, { name: 'n', into: n }], {}, { sync: true });
      const js2 = await Session.create(model, 'cpu', { threads: 1 });
      const ref2 = await toFloat32((await js2.run({ x: f32(xData.map((v) => -v), [5, 3]) })).y);
      await js2.dispose();
      assert.deepEqual(Array.from(y.read() as Float32Array), Array.from(ref2));
    } finally {
      for (const t of [x, y, n]) t.release();
      s.release();
    }
  });

  it('turns ONNX Runtime errors into Errors with its message', async () => {
    const s = createCapiSession(model, 'cpu');
    const x = CapiTensor.alloc('float32', [5, 3]);
    const wrong = CapiTensor.alloc('float32', [5, 4]);
    try {
      await assert.rejects(s.run({ nope: x }, [{ name: 'y', into: wrong }], {}, { sync: true }), /ONNX Runtime \(code \d+\): .*nope/);
      const badShape = CapiTensor.alloc('float32', [2, 2]);
      try {
        await assert.rejects(s.run({ x: badShape }, [{ name: 'y', into: wrong }], {}, { sync: true }), /ONNX Runtime \(code \d+\)/);
      } finally {
        badShape.release();
      }
    } finally {
      x.release();
      wrong.release();
      s.release();
    }
    assert.throws(() => CapiSession.create(Uint8Array.from([1, 2, 3])), /ONNX Runtime \(code \d+\)/);
  });

  it('appending the CUDA provider where none is installed is an error, not a crash', { skip: devicesToTry('auto').devices.includes('cuda') ? 'a CUDA provider is installed here' : false }, () => {
    assert.throws(() => CapiSession.create(model, { cuda: { device_id: '0', enable_cuda_graph: '1' } }), /ONNX Runtime \(code \d+\)/);
  });
});
