// Next-token choice: greedy, or sampling with temperature, top-k and top-p (nucleus).
import type { SamplingOptions } from './types';

/** A small seeded PRNG (mulberry32) so that sampled answers are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** log-softmax of one row, in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

export function sampleToken(logits: ArrayLike<number>, options: SamplingOptions, random: () => number): number {
  const temperature = options.temperature ?? 0;
  if (temperature <= 0) return argmax(logits);
  const scaled = Array.from(logits, (x) => x / temperature);
  let order = scaled.map((_, i) => i).sort((a, b) => scaled[b] - scaled[a]);
  if (options.topK && options.topK > 0) order = order.slice(0, options.topK);
  const max = scaled[order[0]];
  let probs = order.map((i) => Math.exp(scaled[i] - max));
  let total = probs.reduce((s, p) => s + p, 0);
  if (options.topP !== undefined && options.topP < 1) {
    // keep the smallest prefix whose probability mass reaches topP
    let mass = 0;
    let keep = 0;
    while (keep < probs.length && mass < options.topP * total) mass += probs[keep++];
    order = order.slice(0, Math.max(1, keep));
    probs = probs.slice(0, Math.max(1, keep));
    total = probs.reduce((s, p) => s + p, 0);
  }
  let r = random() * total;
  for (let k = 0; k < order.length; k++) {
    r -= probs[k];
    if (r <= 0) return order[k];
  }
  return order[order.length - 1];
}
