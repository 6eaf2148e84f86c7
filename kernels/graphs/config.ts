/**
 * The model shapes the graph builders need, owned here so that kernels/ imports nothing
 * above it (DESIGN.md section 1). The engine's checkpoint loader fills these from
 * config.json; server/src/engine/config.ts re-exports them.
 */

export type ModelFamily = 'qwen2_vl' | 'qwen2_5_vl';

export interface VisionConfig {
  readonly family: ModelFamily;
  readonly depth: number;
  /** ViT width (Qwen2-VL `embed_dim`; Qwen2.5-VL `hidden_size`). */
  readonly embedDim: number;
  readonly numHeads: number;
  /** ViT MLP width (Qwen2-VL: embed_dim * mlp_ratio; Qwen2.5-VL: intermediate_size). */
  readonly mlpDim: number;
  /** 'quick_gelu' for Qwen2-VL, 'silu' (SwiGLU) for Qwen2.5-VL. */
  readonly hiddenAct: string;
  /** Merger output width = LLM hidden size. */
  readonly outHidden: number;
  readonly patchSize: number;
  readonly temporalPatchSize: number;
  readonly spatialMergeSize: number;
  readonly inChannels: number;
  /** Qwen2.5-VL only: window size in pixels (112) and the blocks that attend over the whole image. */
  readonly windowSize: number;
  readonly fullAttBlockIndexes: readonly number[];
  readonly normEps: number;
}

export interface TextConfig {
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly intermediateSize: number;
  readonly vocabSize: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  /** Frequency slots per M-RoPE stream (t, h, w); sums to headDim / 2. */
  readonly mropeSection: readonly [number, number, number];
  readonly maxPositionEmbeddings: number;
  readonly tieWordEmbeddings: boolean;
}
