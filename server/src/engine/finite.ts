/**
 * "A NaN or infinite value anywhere in a run is an error, never an answer" (issue 13): the engine
 * scans what each graph returns (image embeddings, logits) and throws NonFiniteError naming the
 * stage, instead of sampling from NaN logits or caching NaN embeddings. One pass over the array;
 * `x - x` is 0 for every finite float and NaN for NaN and +-Infinity.
 */

/** The graph whose output held the value. */
export type EngineStage = 'vision encoder' | 'language model';

export class NonFiniteError extends Error {
  constructor(
    readonly stage: EngineStage,
    /** What the stage returned, e.g. "image embeddings [140, 64]". */
    readonly output: string,
    /** Flat index of the first bad value. */
    readonly index: number,
    readonly value: number,
  ) {
    super(`the ${stage} returned ${value} in its ${output} (value ${index}); ` +
      'no answer is given from it. The checkpoint\'s weights may be damaged, or the precision too low for this model ' +
      '(try --precision fp32).');
    this.name = 'NonFiniteError';
  }
}

/** Throws NonFiniteError at the first NaN or infinity in `data`. */
export function assertFinite(data: Float32Array, stage: EngineStage, output: string): void {
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (x - x !== 0) throw new NonFiniteError(stage, output, i, x);
  }
}
