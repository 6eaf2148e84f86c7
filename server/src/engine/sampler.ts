/**
 * Next-token choice from one row of logits: greedy by default, or sampling with a seeded
 * generator so runs repeat. The sampling rule, the same wherever the logits are:
 *  1. candidates: the K = sampleTopK(vocab) largest logits, largest first, equal logits in
 *     token-id order (top-k, as llama.cpp and vLLM; the KV arena's decode step computes them
 *     on the device, kernels/graphs/decode-arena.ts, so only they cross to the host);
 *  2. temperature: p_i = exp((l_i - l_0) / T) over the candidates;
 *  3. top-p: the shortest prefix of candidates whose mass reaches topP of their total;
 *  4. one uniform draw (mulberry32) picks within that prefix.
 * With the full row (`next`) the host takes the same candidates first, so both give one token.
 */
import { sampleTopK } from '../../../kernels/graphs/decode-arena';

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

  /** Temperature 0: the argmax, no draw (the KV arena then reads only its `next_token`). */
  get greedy(): boolean {
    return (this.opts.temperature ?? 0) <= 0;
  }

  /**
   * Picks a token from `logits` [vocab]: the argmax (first maximum) when greedy, else the
   * rule in this file's header over the top-K candidates.
   * @throws NonFiniteLogitsError when a logit is NaN: a NaN is an error, never an answer
   *   (argmax over NaN picks token 0 and the answer reads "!!!!").
   */
  next(logits: Float32Array): number {
    for (let i = 0; i < logits.length; i++) if (Number.isNaN(logits[i])) throw new NonFiniteLogitsError(i);
    if (this.greedy) return argmax(logits);
    const { ids, values } = topCandidates(logits, sampleTopK(logits.length));
    return this.pick(ids, values);
  }

  /**
   * Samples from candidates already chosen (rule steps 2-4): `ids` [K] and their finite
   * `logits` [K], largest first, equal logits in id order (the decode step's top_ids /
   * top_logits, or topCandidates). Consumes one draw.
   */
  pick(ids: Int32Array, logits: Float32Array): number {
    const t = this.opts.temperature ?? 0;
    if (!(t > 0)) throw new Error('Sampler.pick samples at a temperature > 0; greedy decoding takes the argmax');
    const topP = this.opts.topP ?? 1;
    const probs = Array.from(logits, (l) => Math.exp((l - logits[0]) / t));
    const total = probs.reduce((a, b) => a + b, 0);
    let kept = 0, mass = 0;
    while (kept < probs.length && mass < topP * total) mass += probs[kept++];
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

/**
 * The k largest logits of `v` and their ids, largest first, equal logits in id order (ONNX
 * TopK's order, so the host and the decode step agree). One pass; `v` must hold no NaN.
 */
export function topCandidates(v: Float32Array, k: number): { ids: Int32Array; values: Float32Array } {
  const n = Math.min(k, v.length);
  const ids = new Int32Array(n), values = new Float32Array(n);
  let size = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    // A later id never displaces an equal logit: `>` keeps the lower id ahead.
    if (size === n && !(x > values[n - 1])) continue;
    let j = size < n ? size++ : n - 1;
    while (j > 0 && x > values[j - 1]) {
      values[j] = values[j - 1];
      ids[j] = ids[j - 1];
      j--;
    }
    values[j] = x;
    ids[j] = i;
  }
  return { ids, values };
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
