// The unbiased Best-of-n estimator against brute-force enumeration of every n-subset.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  argmax,
  bestOfNCurve,
  bestOfNWeights,
  expectedBestOfN,
  goldValue,
  meanWithStderr,
} from './estimator.js';

/** Mean over all C(N, n) draws of the gold value Best-of-n keeps (a tie at the top: uniform pick). */
function bruteForce(scores: readonly number[], gold: readonly number[], n: number): number {
  const N = scores.length;
  let total = 0;
  let draws = 0;
  for (let mask = 0; mask < 1 << N; mask++) {
    const members: number[] = [];
    for (let i = 0; i < N; i++) if (mask & (1 << i)) members.push(i);
    if (members.length !== n) continue;
    const top = Math.max(...members.map((i) => scores[i] as number));
    const tied = members.filter((i) => scores[i] === top);
    total += tied.reduce((s, i) => s + (gold[i] as number), 0) / tied.length;
    draws++;
  }
  return total / draws;
}

const pool = fc.integer({ min: 1, max: 10 }).chain((N) =>
  fc.record({
    // few distinct values, so ties are common
    scores: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: N, maxLength: N }),
    gold: fc.array(fc.constantFrom(0, 0.5, 1), { minLength: N, maxLength: N }),
    n: fc.integer({ min: 1, max: N }),
  }),
);

describe('bestOfNWeights / expectedBestOfN', () => {
  it('equals brute-force enumeration on small pools, ties included', () => {
    fc.assert(
      fc.property(pool, ({ scores, gold, n }) => {
        expect(expectedBestOfN({ scores, gold }, n)).toBeCloseTo(bruteForce(scores, gold, n), 12);
      }),
      { numRuns: 400, seed: 7 },
    );
  });

  it('equals brute force on a hand-made pool with a three-way tie at the top', () => {
    const scores = [0.2, 0.9, 0.9, -1, 0.9, 0.5, 0.2, 3e-9, 0.5, 0.1];
    const gold = [1, 0, 1, 1, 0.5, 0, 1, 0, 1, 0];
    for (let n = 1; n <= scores.length; n++)
      expect(expectedBestOfN({ scores, gold }, n)).toBeCloseTo(bruteForce(scores, gold, n), 12);
  });

  it('gives the mean at n = 1 and the top candidate (ties averaged) at n = N', () => {
    const scores = [3, 1, 2, 3];
    const gold = [1, 0, 0.5, 0];
    expect(expectedBestOfN({ scores, gold }, 1)).toBeCloseTo(0.375, 14);
    expect(expectedBestOfN({ scores, gold }, 4)).toBeCloseTo(0.5, 14);
    expect(Array.from(bestOfNWeights([1, 2, 3, 4], 4))).toEqual([0, 0, 0, 1]);
  });

  it('does not depend on the order of the candidates', () => {
    const scores = [0.3, 0.1, 0.3, 0.7, 0.2];
    const gold = [1, 0, 0, 1, 0.5];
    const perm = [4, 2, 0, 3, 1];
    for (let n = 1; n <= 5; n++) {
      const a = expectedBestOfN({ scores, gold }, n);
      const b = expectedBestOfN(
        { scores: perm.map((i) => scores[i] as number), gold: perm.map((i) => gold[i] as number) },
        n,
      );
      expect(a).toBeCloseTo(b, 14);
    }
  });

  it('stays stable for N = 51, n ≤ 32 and for N = 2000, n = 1000: weights sum to 1 and match the binomial ratio', () => {
    const scores = Array.from({ length: 51 }, (_, i) => Math.sin(i));
    for (const n of [1, 2, 4, 8, 16, 32]) {
      const w = bestOfNWeights(scores, n);
      expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      // top-ranked: C(50, n-1) / C(51, n) = n / 51
      expect(w[argmax(scores)]).toBeCloseTo(n / 51, 14);
    }
    const big = bestOfNWeights(
      Array.from({ length: 2000 }, (_, i) => i),
      1000,
    );
    expect(big.every(Number.isFinite)).toBe(true);
    expect(big.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    expect(big[1999]).toBeCloseTo(0.5, 14);
    expect(big[998]).toBe(0); // rank 999 < n can never be the best
  });

  it('rejects n outside 1 … N and NaN scores, naming the field', () => {
    expect(() => bestOfNWeights([1, 2], 3, 'pool x')).toThrow(/n = 3 exceeds the 2 candidates of pool x/);
    expect(() => bestOfNWeights([1, 2], 0)).toThrow(/positive integer/);
    expect(() => bestOfNWeights([1, Number.NaN], 1)).toThrow(/NaN/);
    expect(() => expectedBestOfN({ scores: [1, 2], gold: [1] }, 1)).toThrow(/2 scores but 1 gold/);
  });
});

describe('curves and helpers', () => {
  it('reports the mean over prompts in percent with the standard error', () => {
    const pools = [
      { scores: [1, 2], gold: [0, 1] },
      { scores: [2, 1], gold: [0, 1] },
    ];
    const [n1, n2] = bestOfNCurve(pools, [1, 2]);
    expect(n1).toMatchObject({ n: 1, winRate: 50, stderr: 0, prompts: 2, perPrompt: [0.5, 0.5] });
    expect(n2).toMatchObject({ n: 2, winRate: 50, prompts: 2, perPrompt: [1, 0] });
    expect(n2?.stderr).toBeCloseTo(50, 12);
  });

  it('has gold values win 1, draw 0.5, loss 0; argmax keeps the first of a tie; stderr of one value is 0', () => {
    expect([goldValue('win'), goldValue('draw'), goldValue('loss')]).toEqual([1, 0.5, 0]);
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(meanWithStderr([0.25])).toEqual({ mean: 0.25, stderr: 0 });
  });
});
