/**
 * The device tier of image KV: an image's per-layer K (pre-RoPE) and V kept on the
 * GPU, and the given rows of a step assembled there — so a cache hit does not copy
 * and upload the reused rows for every request (at 1344x1344 on Qwen2.5-VL-3B that
 * is 81 MB per request).
 *
 * Two small graph families do the work (one session per shape of the request):
 *   upload:   k.L, v.L [n, nKv, D] host -> the same on the device (Identity)
 *   assemble: per chunk i, either host rows c{i}.k.L [n_i, nKv, D], or device rows
 *             c{i}.k.L [nImg, nKv, D] with c{i}.range int64 [2] = [r0, r1) -> k.L = Concat over
 *             chunks (rows of device chunks sliced on the device), outputs on the device.
 */
import { Graph } from '../../../kernels/onnx/graph';
import { Device, Session, Tensor, f16, f32, i64 } from './ort';

export interface KvShape {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly kvDtype: 'float32' | 'float16';
}

/** K and V of every layer on the device: [rows, nKv, D] each. */
export interface DeviceKvEntry {
  readonly keys: readonly Tensor[];
  readonly values: readonly Tensor[];
  readonly rows: number;
  readonly bytes: number;
}

/** A piece of the given rows: host bytes per layer, or a row range of a device entry. */
export type KvChunk =
  | { readonly kind: 'host'; readonly k: readonly Uint8Array[]; readonly v: readonly Uint8Array[]; readonly rows: number }
  | { readonly kind: 'device'; readonly entry: DeviceKvEntry; readonly r0: number; readonly r1: number };

export class DeviceKv {
  private sessions = new Map<string, Promise<Session>>();

  constructor(readonly device: Device, readonly shape: KvShape) {}

  private get rowBytes(): number {
    return this.shape.numKvHeads * this.shape.headDim * (this.shape.kvDtype === 'float32' ? 4 : 2);
  }

  private hostTensor(bytes: Uint8Array): Tensor {
    const dims = [bytes.length / this.rowBytes, this.shape.numKvHeads, this.shape.headDim];
    return this.shape.kvDtype === 'float32'
      ? f32(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), dims)
      : f16(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2), dims);
  }

  /** Copies an image's K/V (host bytes per layer, [rows, nKv, D]) to the device. */
  async upload(k: readonly Uint8Array[], v: readonly Uint8Array[]): Promise<DeviceKvEntry> {
    const L = this.shape.numLayers;
    const s = await this.session('upload', () => {
      const g = new Graph('kv-upload');
      for (let l = 0; l < L; l++) {
        for (const kv of ['k', 'v']) g.output(g.op('Identity', [this.input(g, `${kv}.${l}`)]), `${kv}.out.${l}`, this.shape.kvDtype, ['n', this.shape.numKvHeads, this.shape.headDim]);
      }
      return g;
    }, L);
    const feeds: Record<string, Tensor> = {};
    for (let l = 0; l < L; l++) {
      feeds[`k.${l}`] = this.hostTensor(k[l]);
      feeds[`v.${l}`] = this.hostTensor(v[l]);
    }
    const out = await s.run(feeds);
    const rows = k[0].length / this.rowBytes;
    return {
      keys: Array.from({ length: L }, (_, l) => out[`k.out.${l}`]),
      values: Array.from({ length: L }, (_, l) => out[`v.out.${l}`]),
      rows, bytes: 2 * L * k[0].length,
    };
  }

  /** The given rows of a step, per layer on the device: the chunks concatenated in order. */
  async assemble(chunks: readonly KvChunk[]): Promise<{ keys: Tensor[]; values: Tensor[] }> {
    const L = this.shape.numLayers;
    const signature = chunks.map((c) => c.kind[0]).join('');
    const s = await this.session(`assemble-${signature}`, () => {
      const g = new Graph(`kv-assemble-${signature}`);
      const ranges = chunks.map((c, i) => (c.kind === 'device' ? g.input(`c${i}.range`, 'int64', [2]) : ''));
      for (let l = 0; l < L; l++) {
        for (const kv of ['k', 'v']) {
          const parts = chunks.map((c, i) => {
            const x = this.input(g, `c${i}.${kv}.${l}`);
            if (c.kind === 'host') return x;
            const r0 = g.op('Slice', [ranges[i], g.i64([0]), g.i64([1])]);
            const r1 = g.op('Slice', [ranges[i], g.i64([1]), g.i64([2])]);
            return g.op('Slice', [x, r0, r1, g.i64([0])]);
          });
          const y = parts.length === 1 ? g.op('Identity', [parts[0]]) : g.op('Concat', parts, { axis: 0 });
          g.output(y, `${kv}.out.${l}`, this.shape.kvDtype, ['n', this.shape.numKvHeads, this.shape.headDim]);
        }
      }
      return g;
    }, L);
    const feeds: Record<string, Tensor> = {};
    chunks.forEach((c, i) => {
      for (let l = 0; l < L; l++) {
        feeds[`c${i}.k.${l}`] = c.kind === 'host' ? this.hostTensor(c.k[l]) : c.entry.keys[l];
        feeds[`c${i}.v.${l}`] = c.kind === 'host' ? this.hostTensor(c.v[l]) : c.entry.values[l];
      }
      if (c.kind === 'device') feeds[`c${i}.range`] = i64([c.r0, c.r1]);
    });
    const out = await s.run(feeds);
    return {
      keys: Array.from({ length: L }, (_, l) => out[`k.out.${l}`]),
      values: Array.from({ length: L }, (_, l) => out[`v.out.${l}`]),
    };
  }

  /** Frees an entry's device memory. */
  static dispose(e: DeviceKvEntry): void {
    for (const t of [...e.keys, ...e.values]) if (t.location !== 'cpu') t.dispose();
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).dispose();
    this.sessions.clear();
  }

  private input(g: Graph, name: string): string {
    return g.input(name, this.shape.kvDtype, ['n', this.shape.numKvHeads, this.shape.headDim]);
  }

  private session(key: string, build: () => Graph, L: number): Promise<Session> {
    let s = this.sessions.get(key);
    if (!s) {
      const outputs = Array.from({ length: L }, (_, l) => [`k.out.${l}`, `v.out.${l}`]).flat();
      s = Session.create(build().toModel(), this.device, { keepOnDevice: outputs });
      this.sessions.set(key, s);
    }
    return s;
  }
}
