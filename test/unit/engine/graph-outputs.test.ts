/**
 * kernels/onnx/graph.ts `output`: a node's value becomes a graph output by renaming it in place, not
 * through an Identity node (on CUDA every Identity is a device copy and a kernel launch per run), and
 * uses of the old name, before and after, still read it. Inputs and a value output twice are copied.
 * ModelGraph.reshape folds a reshape of a reshape into one, and nodes nothing reads are left out.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../../kernels/onnx/graph';
import { ModelGraph } from '../../../kernels/graphs/common';
import { Session, f32 } from '../../../server/src/engine/ort';

/** How many nodes of `op` the serialised model has (an op type is a length-prefixed string in the protobuf). */
function count(model: Uint8Array, op: string): number {
  const needle = Buffer.concat([Buffer.from([op.length]), Buffer.from(op)]);
  let n = 0;
  for (let i = Buffer.from(model).indexOf(needle); i >= 0; i = Buffer.from(model).indexOf(needle, i + 1)) n++;
  return n;
}

describe('graph outputs', () => {
  it('renames a computed value to its output name, and later uses still read it', async () => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', [3]);
    const r = g.op('Relu', [x]);
    const before = g.op('Neg', [r]); // a use before the rename
    g.output(r, 'relu', 'float32', [3]);
    const after = g.op('Abs', [g.op('Sub', [r, before])]); // a use after it: |relu + relu|
    g.output(after, 'twice', 'float32', [3]);
    g.output(r, 'relu_again', 'float32', [3]); // the same value a second time: a copy
    g.output(x, 'x_copy', 'float32', [3]); // a graph input: a copy
    const model = g.toModel({ opset: 21 });
    assert.equal(count(model, 'Identity'), 2, 'only the repeated output and the input are copied');
    const s = await Session.create(model, 'cpu');
    const out = await s.run({ x: f32(Float32Array.from([-1, 2, 3]), [3]) });
    assert.deepEqual([...out.relu.data as Float32Array], [0, 2, 3]);
    assert.deepEqual([...out.twice.data as Float32Array], [0, 4, 6]);
    assert.deepEqual([...out.relu_again.data as Float32Array], [0, 2, 3]);
    assert.deepEqual([...out.x_copy.data as Float32Array], [-1, 2, 3]);
    await s.dispose();
  });
});

describe('reshape chains', () => {
  it('a reshape of a reshape is one reshape of the original; the inner one stays only where it is read', async () => {
    const g = new ModelGraph('r', () => undefined, { computeDtype: 'float32', attention: 'manual' });
    const x = g.input('x', 'float32', [6]);
    const a = g.reshape(x, [2, 3]); // read only by the next reshape: dropped from the model
    g.output(g.reshape(a, [3, 2]), 'y', 'float32', [3, 2]);
    const b = g.reshape(x, [1, 6]); // also read by a Neg: kept
    g.output(g.op('Neg', [b]), 'neg', 'float32', [1, 6]);
    g.output(g.reshape(b, [6, 1]), 'z', 'float32', [6, 1]);
    const model = g.toModel({ opset: 21 });
    assert.equal(count(model, 'Reshape'), 3, 'x->y, x->b, x->z');
    const s = await Session.create(model, 'cpu');
    const out = await s.run({ x: f32(Float32Array.from([1, 2, 3, 4, 5, 6]), [6]) });
    assert.deepEqual([out.y.dims, [...out.y.data as Float32Array]], [[3, 2], [1, 2, 3, 4, 5, 6]]);
    assert.deepEqual([out.z.dims, [...out.neg.data as Float32Array]], [[6, 1], [-1, -2, -3, -4, -5, -6]]);
    await s.dispose();
  });

  it('a reshape to the target that already gave a value its shape (kept through rotary) is that value: no node', () => {
    const g = new ModelGraph('s', () => undefined, { computeDtype: 'float32', attention: 'manual' });
    const x = g.input('x', 'float32', [2, 8]); // [rows, heads * D], 2 heads of D = 4
    const cache = { cos: g.input('cos', 'float32', [2, 2]), sin: g.input('sin', 'float32', [2, 2]) };
    const flat = g.reshape(x, [1, -1, 8]);
    assert.equal(g.reshape(flat, [1, -1, 8]), flat, 'the same target again');
    const rotated = g.rotateAt(flat, cache, g.input('pos', 'int64', [1, 2]), 2); // [1, rows, 8], as flat
    // The step graph's queries: rotated, viewed as [rows, heads, D], then flat again for attention.
    const again = g.reshape(g.reshape(rotated, [-1, 2, 4]), [1, -1, 8]);
    assert.equal(again, rotated);
    g.output(g.op('Neg', [again]), 'y', 'float32', [1, 2, 8]);
    assert.equal(count(g.toModel({ opset: 21 }), 'Reshape'), 1, 'only x -> [1, -1, 8]');
  });
});
