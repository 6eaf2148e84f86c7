/**
 * Errors raised while opening a model folder. Each carries a stable `code` that the
 * server can map to a protocol error, the offending path where there is one, and a
 * message that tells the user what to do next.
 */

export type CheckpointErrorCode =
  /** The model folder does not exist or is not a directory. */
  | 'FolderMissing'
  /** The folder has no config.json, so it is not a Hugging Face model folder. */
  | 'NotAModelFolder'
  /** config.json names a model_type we cannot run. */
  | 'UnsupportedModelType'
  /** A JSON file is unreadable or a required field is missing or inconsistent. */
  | 'InvalidConfig'
  /** Neither model.safetensors nor model.safetensors.index.json is present. */
  | 'NoWeights'
  /** The shard index names a file that is not in the folder. */
  | 'ShardMissing'
  /** The shard index lists a tensor that its shard does not contain. */
  | 'WeightNotInShard'
  /** Weights the config requires are absent from every shard. */
  | 'MissingWeights'
  /** A weight's shape disagrees with the other weights or the config. */
  | 'ShapeMismatch'
  /** The same weight appears twice (in two shards, or under both naming schemes). */
  | 'DuplicateWeight'
  /** tokenizer.json is absent. */
  | 'TokenizerMissing'
  /** A .safetensors file is truncated or its header is malformed. */
  | 'CorruptSafetensors'
  /** A tensor uses a dtype other than BF16, F16 or F32 (for example a quantized checkpoint). */
  | 'UnsupportedDtype'
  /** The chat template failed to render or produced an inconsistent prompt. */
  | 'ChatTemplate';

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';

  /**
   * @param code Stable machine-readable reason.
   * @param message Whole-sentence explanation ending with what the user should do.
   * @param path The file or folder the error is about, when there is one.
   */
  constructor(
    readonly code: CheckpointErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

/** The command we suggest whenever files look incomplete. */
export const REDOWNLOAD_HINT =
  'Re-download the model, e.g. `hf download Qwen/Qwen2-VL-2B-Instruct --local-dir <folder>`.';
