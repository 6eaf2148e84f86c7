/**
 * Row bookkeeping for the layered step graph (kernels/graphs/llm-layered.ts): the
 * per-run table of rows, the table indices of each layer's given and computed rows,
 * and the index feeds. Pure: VlModel adds the embeddings and the K/V tensors.
 *
 * A run's table holds every row the run touches (given at some layer, or computed),
 * sorted by sequence row and without repeats, so that the graph's causal rule on table
 * indices (key index <= query index) is the causal rule on rows.
 */
import type { StepInput } from './step-io';
import { Tensor, i32 } from './ort';

/**
 * A row index no real row reaches: the one masked "given" row that a step carries
 * where it has no given row, so that no input tensor is ever zero-sized (WebGPU
 * rejects those). It sorts after every real row, so the causal mask hides it.
 */
export const DUMMY_ROW = 1 << 30;

/**
 * Keys/values given to a layered step, pre-RoPE: each layer has its own rows, all of
 * them rows of one table that carries their positions.
 */
export interface LayeredPast {
  /** The table: sequence rows, ascending, no repeats. */
  readonly rows: readonly number[];
  /** [3, rows.length] stream-major M-RoPE positions of the table's rows. */
  readonly positions: readonly number[];
  /**
   * Per layer, the table index of each given row in tensor order (any order). A layer
   * may have none (then its tensors are ignored and the step passes the dummy row).
   */
  readonly index: readonly (readonly number[])[];
  /** Per layer [index[l].length, nKv, headDim] in the KV dtype (host or device). */
  readonly keys: readonly Tensor[];
  readonly values: readonly Tensor[];
}

export interface LayeredStepInput extends Omit<StepInput, 'past'> {
  readonly past?: LayeredPast;
  /**
   * keep[l - 1] for layers l in [1, numLayers): indices into layer l-1's computed rows
   * (layer 0's are `rows`) of the rows still computed at layer l, ascending and not
   * empty. A row that is not kept exits: a later row that attends to it at a deeper
   * layer needs its K/V given there. Absent (or shorter): every later layer keeps all.
   */
  readonly keep?: readonly (readonly number[])[];
  /** Indices into the LAST layer's computed rows whose logits are returned. */
  readonly logitRows: readonly number[];
}

export interface LayeredStepOutput {
  /** [nL, vocab] float32. */
  readonly logits: Float32Array;
  /** Per layer: its given rows (the dummy where there were none), then its computed rows. */
  readonly present: LayeredPast;
}

/** One run in table indices: what the layered graph is fed besides embeddings and K/V. */
export interface LayeredRun {
  /** The run's table (sequence rows, ascending) and its [3, n] positions. */
  readonly rows: number[];
  readonly positions: number[];
  /** Per layer, the given rows' table indices ([dummy] where the layer is given none). */
  readonly pastIndex: number[][];
  /** Per layer, whether that layer is given the dummy row instead of its own tensors. */
  readonly dummy: boolean[];
  /** keep lists of layers 1.., as fed (all rows where the input gave none). */
  readonly keep: number[][];
  /** Per layer, the computed rows' table indices (layer 0's: the graph's q_index). */
  readonly computed: number[][];
}

/** Rows with their positions, [3, n] stream-major. */
interface RowSet {
  readonly rows: readonly number[];
  readonly positions: readonly number[];
}

/**
 * The table of a run over row sets that may overlap: rows ascending without repeats,
 * positions, and each row's index.
 * @throws when one row comes with two different positions.
 */
function table(sets: readonly RowSet[]): { rows: number[]; positions: number[]; indexOf: (row: number) => number } {
  const pos = new Map<number, number[]>();
  for (const s of sets) {
    const n = s.rows.length;
    if (s.positions.length !== 3 * n) throw new Error(`${n} rows need ${3 * n} positions, got ${s.positions.length}`);
    for (let i = 0; i < n; i++) {
      const p = [s.positions[i], s.positions[n + i], s.positions[2 * n + i]];
      const seen = pos.get(s.rows[i]);
      if (!seen) pos.set(s.rows[i], p);
      else if (seen.some((v, j) => v !== p[j])) throw new Error(`row ${s.rows[i]} has two positions: ${seen} and ${p}`);
    }
  }
  const rows = [...pos.keys()].sort((a, b) => a - b);
  const positions = new Array<number>(3 * rows.length);
  const index = new Map<number, number>();
  rows.forEach((r, i) => {
    const p = pos.get(r)!;
    for (let s = 0; s < 3; s++) positions[s * rows.length + i] = p[s];
    index.set(r, i);
  });
  return { rows, positions, indexOf: (r) => index.get(r)! };
}

const DUMMY: RowSet = { rows: [DUMMY_ROW], positions: [0, 0, 0] };

function checkAscending(what: string, xs: readonly number[], bound: number): void {
  if (xs.length === 0) throw new Error(`${what} is empty`);
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isInteger(xs[i]) || xs[i] < 0 || xs[i] >= bound || (i > 0 && xs[i] <= xs[i - 1])) {
      throw new Error(`${what} must ascend within [0, ${bound}): ${xs.slice(0, 8).join(', ')}${xs.length > 8 ? ', ...' : ''}`);
    }
  }
}

/**
 * The run of a layered step: its table (the past's rows, the computed rows and, where
 * some layer is given none, the dummy row) and every layer's rows as table indices.
 * @throws on malformed input (rows not ascending, keep lists out of range, ...).
 */
export function planLayered(numLayers: number, input: LayeredStepInput): LayeredRun {
  const { past } = input;
  checkAscending('rows', input.rows, Number.MAX_SAFE_INTEGER);
  if (past && (past.index.length !== numLayers || past.keys.length !== numLayers || past.values.length !== numLayers)) {
    throw new Error(`a layered past needs ${numLayers} layers`);
  }
  const dummy = Array.from({ length: numLayers }, (_, l) => !past || past.index[l].length === 0);
  const sets: RowSet[] = [input];
  if (past) sets.push(past);
  if (dummy.some(Boolean)) sets.push(DUMMY);
  const t = table(sets);
  const pastIndex = dummy.map((d, l) => {
    if (d) return [t.indexOf(DUMMY_ROW)];
    const index = past!.index[l];
    for (const kv of [past!.keys[l], past!.values[l]]) {
      if (kv.dims[0] !== index.length) throw new Error(`layer ${l}: ${index.length} given rows but K/V of ${kv.dims[0]}`);
    }
    return index.map((i) => {
      if (!(i >= 0 && i < past!.rows.length)) throw new Error(`layer ${l}: given row ${i} is outside the past's table`);
      return t.indexOf(past!.rows[i]);
    });
  });
  const computed = [input.rows.map(t.indexOf)];
  const keep: number[][] = [];
  for (let l = 1; l < numLayers; l++) {
    const prev = computed[l - 1];
    const k = input.keep?.[l - 1] ? [...input.keep[l - 1]] : prev.map((_, i) => i);
    checkAscending(`keep list of layer ${l}`, k, prev.length);
    keep.push(k);
    computed.push(k.map((i) => prev[i]));
  }
  checkLogitRows(input.logitRows, computed[numLayers - 1].length);
  return { rows: t.rows, positions: t.positions, pastIndex, dummy, keep, computed };
}

/**
 * The run of a uniform step (every layer given `past`, every row computed at every
 * layer) on the layered graph: VlModel.step on a model loaded `layered`.
 */
export function planUniform(numLayers: number, past: RowSet, input: RowSet & { logitRows: readonly number[] }): LayeredRun {
  checkAscending('rows', input.rows, Number.MAX_SAFE_INTEGER);
  if (past.rows.length === 0) throw new Error('a step needs at least one given row (the dummy where there is none)');
  const t = table([input, past]);
  const given = past.rows.map(t.indexOf);
  const rows = input.rows.map(t.indexOf);
  const all = input.rows.map((_, i) => i);
  checkLogitRows(input.logitRows, rows.length);
  return {
    rows: t.rows, positions: t.positions,
    pastIndex: Array.from({ length: numLayers }, () => given),
    dummy: Array.from({ length: numLayers }, () => false),
    keep: Array.from({ length: numLayers - 1 }, () => all),
    computed: Array.from({ length: numLayers }, () => rows),
  };
}

function checkLogitRows(logitRows: readonly number[], n: number): void {
  if (logitRows.length === 0 || logitRows.some((i) => !Number.isInteger(i) || i < 0 || i >= n)) {
    throw new Error(`logit rows must be non-empty indices into the last layer's ${n} rows`);
  }
}

/**
 * The index inputs of the layered graph for `run`: all_positions, q_index, keep.l,
 * past_index.l and logit_rows, all int32 and none empty. Layers that share one index
 * list share one tensor.
 */
export function layeredIndexFeeds(run: LayeredRun, logitRows: readonly number[]): Record<string, Tensor> {
  const tensors = new Map<readonly number[], Tensor>();
  const once = (xs: number[]) => {
    let t = tensors.get(xs);
    if (!t) tensors.set(xs, (t = i32(xs)));
    return t;
  };
  const feeds: Record<string, Tensor> = {
    all_positions: i32(run.positions, [3, run.rows.length]),
    q_index: once(run.computed[0]),
    logit_rows: i32(logitRows),
  };
  run.pastIndex.forEach((xs, l) => { feeds[`past_index.${l}`] = once(xs); });
  run.keep.forEach((xs, i) => { feeds[`keep.${i + 1}`] = once(xs); });
  return feeds;
}

/** A uniform Past (every layer the same rows) as a LayeredPast over its own table. */
export function layeredFrom(past: RowSet & Pick<LayeredPast, 'keys' | 'values'>): LayeredPast {
  const t = table([past]);
  const index = past.rows.map(t.indexOf);
  return { rows: t.rows, positions: t.positions, index: past.keys.map(() => index), keys: past.keys, values: past.values };
}

/** The sequence rows of layer l's given rows of a LayeredPast, in tensor order. */
export function layerRows(past: LayeredPast, l: number): number[] {
  return past.index[l].map((i) => past.rows[i]);
}
