/**
 * Cache entries checked against the model before use. A disk entry can be well formed (its
 * checksum verifies) and still wrong for this model: fewer layers, a tensor dropped or
 * renamed, halved shapes, another dtype, a grid that does not match its rows. Such an entry
 * used to make every later ask of that image fail (`Cannot read properties of undefined
 * (reading 'dtype')`, an ONNX Runtime shape error) until `cache clear`. The reuse engine
 * treats an entry that fails here as a miss: the image is recomputed and its fresh entry,
 * stored under the same key, replaces the bad one, so the check fails at most once.
 */
import { DTYPE_BYTES, shapeElements, type CacheEntry, type EntryTensor } from '../cache/entry';

/** What the checks need of the model: ReuseEngine's ModelShape. */
export interface EntryModel {
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
}

/** Whether a tensor's bytes hold exactly its shape in its dtype. */
function sized(t: EntryTensor): boolean {
  return (t.dtype === 'float32' || t.dtype === 'float16') && t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)
    && t.data.byteLength === shapeElements(t.shape) * DTYPE_BYTES[t.dtype];
}

/**
 * What is wrong with an encoder entry for this model, or undefined: one float32 tensor
 * `embeds` [nImageTokens, hidden], and `meta.grid` [t, h, w] whose t * h * w patches
 * merge into exactly nImageTokens rows (by a square merge block).
 */
export function encoderEntryProblem(e: CacheEntry, m: EntryModel): string | undefined {
  if (e.kind !== 'encoder') return `kind ${e.kind}, expected encoder`;
  if (e.tensors.length !== 1 || e.tensors[0].name !== 'embeds') return `tensors [${e.tensors.map((t) => t.name).join(', ')}], expected [embeds]`;
  const t = e.tensors[0];
  if (t.dtype !== 'float32') return `embeds is ${t.dtype}, expected float32`;
  if (t.shape.length !== 2 || t.shape[1] !== m.hiddenSize || t.shape[0] < 1) return `embeds shape [${t.shape.join(', ')}], expected [n, ${m.hiddenSize}]`;
  if (!sized(t)) return `embeds holds ${t.data.byteLength} bytes, not its shape's`;
  const grid = e.meta.grid;
  if (!Array.isArray(grid) || grid.length !== 3 || !grid.every((g) => Number.isSafeInteger(g) && g > 0)) return `grid ${JSON.stringify(grid)}`;
  const patches = (grid[0] as number) * (grid[1] as number) * (grid[2] as number);
  const perRow = patches / t.shape[0];
  if (!Number.isInteger(perRow) || !Number.isInteger(Math.sqrt(perRow))) return `grid ${grid.join('x')} does not merge into ${t.shape[0]} rows`;
  return undefined;
}

/**
 * What is wrong with an image KV entry for this model, or undefined: `meta.layers` equal to
 * the model's layer count and, for every layer l, `k.l` and `v.l` of shape [nImg, nKvHeads,
 * headDim] (float32 or float16), with nImg the image's row count in the prompt when given.
 */
export function kvEntryProblem(e: CacheEntry, m: EntryModel, nImageRows?: number): string | undefined {
  if (e.kind !== 'kv') return `kind ${e.kind}, expected kv`;
  if (e.meta.layers !== m.numLayers) return `meta.layers ${JSON.stringify(e.meta.layers)}, the model has ${m.numLayers}`;
  if (e.tensors.length !== 2 * m.numLayers) return `${e.tensors.length} tensors, expected ${2 * m.numLayers}`;
  const byName = new Map(e.tensors.map((t) => [t.name, t]));
  let rows: number | undefined = nImageRows;
  for (let l = 0; l < m.numLayers; l++) {
    for (const name of [`k.${l}`, `v.${l}`]) {
      const t = byName.get(name);
      if (!t) return `no tensor ${name}`;
      if (t.shape.length !== 3 || t.shape[1] !== m.numKvHeads || t.shape[2] !== m.headDim) {
        return `${name} shape [${t.shape.join(', ')}], expected [n, ${m.numKvHeads}, ${m.headDim}]`;
      }
      if (!sized(t)) return `${name} holds ${t.data.byteLength} bytes, not its shape's`;
      rows ??= t.shape[0];
      if (t.shape[0] !== rows) return `${name} has ${t.shape[0]} rows, expected ${rows}`;
    }
  }
  return undefined;
}

/** `hit` when its entry passes `problem`, else undefined (a miss: the caller recomputes and overwrites it). */
export function usable<H extends { readonly entry: CacheEntry }>(hit: H | undefined, problem: (e: CacheEntry) => string | undefined): H | undefined {
  return hit && problem(hit.entry) === undefined ? hit : undefined;
}

/** The number of prompt rows of the image `key` in a layout, when it is there. */
export function imageRows(images: readonly { readonly key: string; readonly start: number; readonly end: number }[], key: string): number | undefined {
  const im = images.find((i) => i.key === key);
  return im ? im.end - im.start : undefined;
}
