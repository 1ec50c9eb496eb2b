import { describe, expect, it } from 'vitest';
import { argmax, logSoftmax, sampleToken, seededRandom } from './sampling';

const logits = Float32Array.from([1, 3, 2, -1, 2.9]);

function histogram(options: Parameters<typeof sampleToken>[1], n = 4000): number[] {
  const random = seededRandom(42);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[sampleToken(logits, options, random)]++;
  return counts;
}

describe('sampling', () => {
  it('is greedy at temperature 0', () => {
    expect(argmax(logits)).toBe(1);
    expect(histogram({ temperature: 0 }, 50)).toEqual([0, 50, 0, 0, 0]);
  });

  it('log-softmax sums to one', () => {
    const lp = logSoftmax(logits);
    expect(lp.reduce((s, x) => s + Math.exp(x), 0)).toBeCloseTo(1, 12);
  });

  it('top-k keeps only the k most likely tokens', () => {
    const h = histogram({ temperature: 1, topK: 2 });
    expect(h[0] + h[2] + h[3]).toBe(0);
    expect(h[1]).toBeGreaterThan(h[4]); // 3 vs 2.9: close, but the first wins more often
    expect(h[4]).toBeGreaterThan(1000);
  });

  it('top-p keeps the smallest set reaching the mass', () => {
    // p(1) ≈ 0.40, p(4) ≈ 0.37: top-p 0.5 needs both, never token 3 (p ≈ 0.007)
    const h = histogram({ temperature: 1, topP: 0.5 });
    expect(h[3]).toBe(0);
    expect(h[0]).toBe(0);
    expect(h[1] + h[4]).toBe(4000);
  });

  it('follows the softmax at temperature 1 and is reproducible from the seed', () => {
    const h = histogram({ temperature: 1 });
    const p = Array.from(logSoftmax(logits), Math.exp);
    h.forEach((c, i) => expect(Math.abs(c / 4000 - p[i])).toBeLessThan(0.03));
    expect(histogram({ temperature: 1 })).toEqual(h);
  });
});
