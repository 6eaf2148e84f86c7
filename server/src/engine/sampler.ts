/**
 * Next-token choice from one row of logits: greedy by default, or temperature
 * plus nucleus (top-p) sampling with a seeded generator so runs repeat.
 */

export interface SamplingOptions {
  /** 0 (default) means greedy. */
  readonly temperature?: number;
  /** Nucleus mass in (0, 1]; 1 keeps every token. */
  readonly topP?: number;
  readonly seed?: number;
}

/** The model computed NaN: its weights (or a preprocessing constant) hold NaN or infinities. */
export class NonFiniteLogitsError extends Error {
  override readonly name = 'NonFiniteLogitsError';
  constructor(readonly tokenIndex: number) {
    super(`The model computed NaN (logit ${tokenIndex}): its weights or configuration contain NaN or infinite values. ` +
      'Re-download the model or check its files.');
  }
}

export class Sampler {
  private state: number;

  constructor(private readonly opts: SamplingOptions = {}) {
    this.state = (opts.seed ?? 0x5eed) >>> 0;
  }

  /**
   * Picks a token from `logits` [vocab].
   * @throws NonFiniteLogitsError when a logit is NaN: a NaN is an error, never an answer
   *   (argmax over NaN picks token 0 and the answer reads "!!!!").
   */
  next(logits: Float32Array): number {
    for (let i = 0; i < logits.length; i++) if (Number.isNaN(logits[i])) throw new NonFiniteLogitsError(i);
    const t = this.opts.temperature ?? 0;
    if (t <= 0) return argmax(logits);
    const topP = this.opts.topP ?? 1;
    let max = -Infinity;
    for (const v of logits) if (v > max) max = v;
    // Softmax at temperature t over the candidates, most probable first.
    const ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    const probs = ids.map((i) => Math.exp((logits[i] - max) / t));
    const total = probs.reduce((a, b) => a + b, 0);
    let kept = 0, mass = 0;
    while (kept < ids.length && mass < topP * total) mass += probs[kept++];
    let u = this.random() * mass;
    for (let k = 0; k < kept; k++) {
      u -= probs[k];
      if (u <= 0) return ids[k];
    }
    return ids[kept - 1];
  }

  /** mulberry32: small, fast, good enough for sampling. */
  private random(): number {
    let x = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }
}

export function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** The k largest [id, logit] pairs, largest first. */
export function topLogits(v: Float32Array, k: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < v.length; i++) {
    if (out.length < k || v[i] > out[out.length - 1][1]) {
      out.push([i, v[i]]);
      out.sort((a, b) => b[1] - a[1]);
      if (out.length > k) out.pop();
    }
  }
  return out;
}
