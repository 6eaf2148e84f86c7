/**
 * CUDA smoke test of the native session path, one step per line so that a crash names its
 * step (a SIGSEGV gives no stack): C-API session on CUDA, a synchronous bound run, an async
 * run with host and device outputs, a download, held tensors with cudaMemcpy, then a tiny
 * checkpoint's vision + LM step and a KV-arena decode with CUDA graph capture.
 * Usage on the GPU machine: node --import tsx test/device/cuda-smoke.ts
 */
import { join } from 'node:path';
import { Graph } from '../../kernels/onnx/graph';
import { loadCheckpoint } from '../../server/src/engine/checkpoint';
import { VlModel } from '../../server/src/engine/model';
import { CapiTensor, DeviceTensor, Session, createCapiSession, cudaMemoryInUse, f32, hostBytes } from '../../server/src/engine/ort';
import { Generator } from '../../server/src/ask/generate';

const step = (s: string) => console.log(`[smoke] ${s}`);

async function main(): Promise<void> {
  const g = new Graph('smoke');
  const x = g.input('x', 'float32', ['n', 4]);
  g.output(g.op('Mul', [x, g.f32(2)]), 'y', 'float32', ['n', 4]);
  g.output(g.op('Add', [x, g.f32(1)]), 'z', 'float32', ['n', 4]);
  const model = g.toModel();

  step('create C-API CUDA session');
  const c = createCapiSession(model, 'cuda');
  step('synchronous bound run (host tensors)');
  const hx = CapiTensor.alloc('float32', [2, 4]);
  hx.write(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
  const hy = CapiTensor.alloc('float32', [2, 4]);
  const hz = CapiTensor.alloc('float32', [2, 4]);
  await c.run({ x: hx }, [{ name: 'y', into: hy }, { name: 'z', into: hz }], {}, { sync: true });
  step(`  y = ${Array.from(hy.read() as Float32Array)}`);
  step('async run, y on the device, z on the host');
  const got = await c.run({ x: hx }, [{ name: 'y', location: 'cuda' }, { name: 'z', location: 'cpu' }]);
  step(`  z = ${Array.from(got.get('z')!.read() as Float32Array)}; y is ${got.get('y')!.location}`);
  step('Session on CUDA, keepOnDevice y, download');
  const s = await Session.create(model, 'cuda', { keepOnDevice: ['y'] });
  const out = await s.run({ x: f32(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [2, 4]) });
  step(`  y held: ${out.y instanceof DeviceTensor}; y = ${Array.from(new Float32Array((await hostBytes(out.y)).buffer))}`);
  step('feed a held tensor back');
  const out2 = await s.run({ x: out.y });
  step(`  z = ${Array.from(out2.z.data as Float32Array)}`);
  step('held tensor + cudaMemcpy');
  const h = s.hold('int32', [3]);
  h.upload(Int32Array.from([7, 8, 9]));
  step(`  back: ${Array.from(new Int32Array(h.download().buffer))}; GPU memory ${JSON.stringify(cudaMemoryInUse())}`);
  h.dispose();
  await s.dispose();

  const dir = process.argv[2] ?? join(__dirname, '..', 'golden', 'fixtures', 'qwen25vl-tiny');
  step(`tiny model ${dir} on CUDA`);
  const vl = await VlModel.load(loadCheckpoint(dir), { device: 'cuda', kvArena: {} });
  step('generate with the KV arena (captured decode)');
  const gen = new Generator(vl);
  const img = { name: 'a.png', bytes: (await import('node:fs')).readFileSync(join(__dirname, '..', 'golden', 'fixtures', 'images', 'screen.png')) };
  const a = await gen.ask({ images: [img], question: 'What is it?', maxTokens: 8, ignoreEos: true, mode: 'full' });
  step(`  arena tokens ${a.tokenIds}`);
  vl.kvArena = { graphCapture: false };
  const b = await gen.ask({ images: [img], question: 'What is it?', maxTokens: 8, ignoreEos: true, mode: 'full' });
  step(`  uncaptured ${b.tokenIds}`);
  vl.kvArena = undefined;
  const r = await gen.ask({ images: [img], question: 'What is it?', maxTokens: 8, ignoreEos: true, mode: 'full' });
  step(`  step graph ${r.tokenIds}; same: ${a.tokenIds.join() === r.tokenIds.join() && b.tokenIds.join() === r.tokenIds.join()}`);
  await vl.dispose();
  step('done');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
