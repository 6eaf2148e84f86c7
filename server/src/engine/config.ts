/**
 * Typed, validated model configuration. Everything below the checkpoint loader
 * sees these objects only, never raw `config.json` fields.
 */

import type { ModelFamily, TextConfig, VisionConfig } from '../../../kernels/graphs/config';

/** The graph builders own the model shapes they need (kernels/ imports nothing above it); the engine re-exports them. */
export type { ModelFamily, TextConfig, VisionConfig };

/** Weight storage dtypes we read from safetensors. */
export type WeightDtype = 'BF16' | 'F16' | 'F32';

export interface ModelConfig {
  readonly modelType: ModelFamily;
  readonly text: TextConfig;
  readonly vision: VisionConfig;
  readonly imageTokenId: number;
  readonly videoTokenId: number;
  readonly visionStartTokenId: number;
  readonly visionEndTokenId: number;
  /** Ids that end generation (generation_config.json eos_token_id, else config's). */
  readonly eosTokenIds: readonly number[];
}

/** `preprocessor_config.json`, normalised (both `min_pixels` and `size.shortest_edge` spellings). */
export interface PreprocessConfig {
  readonly minPixels: number;
  readonly maxPixels: number;
  readonly patchSize: number;
  readonly temporalPatchSize: number;
  readonly mergeSize: number;
  readonly imageMean: readonly [number, number, number];
  readonly imageStd: readonly [number, number, number];
  readonly rescaleFactor: number;
}
