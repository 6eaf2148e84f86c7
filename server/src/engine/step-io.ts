/**
 * The language model step's inputs and outputs (rows, positions, given K/V), shared by
 * VlModel (model.ts) and the layered row bookkeeping (layered.ts) without either
 * importing the other.
 */
import type { Tensor } from './ort';

/** Keys/values the language model is given, pre-RoPE, with their rows and positions. */
export interface Past {
  /** [nP] row index of each given row. */
  readonly rows: readonly number[];
  /** [3, nP] stream-major positions. */
  readonly positions: readonly number[];
  /** Per layer [nP, nKv, headDim] in the KV dtype (host or device), pre-RoPE keys. */
  readonly keys: readonly Tensor[];
  readonly values: readonly Tensor[];
}

export interface StepInput {
  /** [nQ] token ids of computed rows. */
  readonly inputIds: readonly number[];
  /** [nQ] sequence rows of computed rows, ascending. */
  readonly rows: readonly number[];
  /** [3, nQ] stream-major positions. */
  readonly positions: readonly number[];
  /** [nV, hidden] vision embeddings and, per computed row, the image row it takes (-1 for text). */
  readonly imageEmbeds?: Float32Array;
  readonly imageRowOf?: readonly number[];
  readonly past?: Past;
  /** Indices into the computed rows whose logits are returned. */
  readonly logitRows: readonly number[];
}

export interface StepOutput {
  /** [nL, vocab] float32. */
  readonly logits: Float32Array;
  /** Given rows (the dummy first when there was no past) followed by the computed rows. */
  readonly present: Past;
}
