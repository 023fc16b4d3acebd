/**
 * The unbiased Best-of-n estimator (Nakano et al. 2021; Coste et al. 2023): from ONE pool of N scored
 * candidates with gold values, the expected gold value of Best-of-n for every n ≤ N — as if n candidates
 * were drawn uniformly without replacement and the one with the highest score were kept.
 *
 * Candidate i with rank r_i from the bottom (1-based) is the best of the draw with probability
 *
 *   P(r) = C(r − 1, n − 1) / C(N, n)
 *
 * computed without any binomial: P(N) = n / N and P(r − 1) = P(r) · (r − n) / (r − 1), a product of
 * factors in [0, 1], so it neither overflows nor cancels (N in the thousands is fine).
 *
 * Ties in score: a draw whose top score is shared by several candidates keeps one of them uniformly at
 * random. That equals averaging P over every ordering of the tied candidates, so each member of a tie
 * group at ranks lo+1 … hi gets the mean of P over those ranks. Nothing depends on input order.
 *
 * Gold values: win = 1, draw = 0.5, loss = 0, so an expected gold value is a win probability; reports
 * give the mean over prompts as a percentage (0–100, the AlpacaEval convention) ± the standard error.
 */
import { ConfigError, DataError } from '@quorum/core';

/** A gold verdict against the reference answer. */
export type GoldLabel = 'win' | 'loss' | 'draw';

/** Gold value of each verdict: a win counts 1, a draw half, a loss 0. */
export const GOLD_VALUES: Readonly<Record<GoldLabel, number>> = { win: 1, draw: 0.5, loss: 0 };

export function goldValue(gold: GoldLabel): number {
  return GOLD_VALUES[gold];
}

/** A scored pool as the estimator sees it: one score and one gold value per candidate. */
export interface EstimatorPool {
  readonly scores: readonly number[];
  readonly gold: readonly number[];
}

/** One point of a win-rate curve: mean over prompts (percent) and its standard error (percent). */
export interface CurvePoint {
  readonly n: number;
  /** Mean expected gold value over prompts × 100. */
  readonly winRate: number;
  /** Standard error of that mean over prompts × 100 (sample std / √P; 0 when P < 2). */
  readonly stderr: number;
  /** Number of prompts averaged. */
  readonly prompts: number;
}

function checkN(n: number, N: number, where: string): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new ConfigError(`n must be a positive integer, got ${n}`, {
      location: { field: 'n' },
      hint: 'e.g. n = 16',
    });
  }
  if (n > N) {
    throw new ConfigError(`n = ${n} exceeds the ${N} candidates of ${where}`, {
      location: { field: 'n' },
      hint: `Best-of-n from a pool needs n ≤ N; use n ≤ ${N}, or a larger pool`,
    });
  }
}

/** P(rank r is the best of n drawn from N) for r = 1 … N (index 0 unused). */
function rankWeights(N: number, n: number): Float64Array {
  const p = new Float64Array(N + 1);
  p[N] = n / N;
  for (let r = N; r > n; r--) p[r - 1] = ((p[r] as number) * (r - n)) / (r - 1);
  return p;
}

/**
 * The probability that Best-of-n keeps each candidate (n drawn without replacement from the N scored
 * ones, ties in score broken uniformly at random). The weights sum to 1.
 */
export function bestOfNWeights(scores: readonly number[], n: number, where = 'the pool'): Float64Array {
  const N = scores.length;
  checkN(n, N, where);
  for (let i = 0; i < N; i++) {
    if (Number.isNaN(scores[i])) {
      throw new DataError(`score of candidate ${i} is NaN`, {
        location: { field: `scores[${i}]` },
        hint: 'the reward model produced NaN; check the checkpoint',
      });
    }
  }
  const byRank = rankWeights(N, n);
  const order = scores
    .map((_, i) => i)
    .sort((a, b) => (scores[a] as number) - (scores[b] as number) || a - b);
  const out = new Float64Array(N);
  for (let lo = 0; lo < N; ) {
    let hi = lo + 1;
    while (hi < N && scores[order[hi] as number] === scores[order[lo] as number]) hi++;
    let sum = 0;
    for (let r = lo + 1; r <= hi; r++) sum += byRank[r] as number;
    for (let j = lo; j < hi; j++) out[order[j] as number] = sum / (hi - lo);
    lo = hi;
  }
  return out;
}

/** Expected gold value of Best-of-n over one pool (a win probability when gold is 0 / 0.5 / 1). */
export function expectedBestOfN(pool: EstimatorPool, n: number, where = 'the pool'): number {
  if (pool.gold.length !== pool.scores.length) {
    throw new DataError(`${pool.scores.length} scores but ${pool.gold.length} gold values`, {
      location: { field: 'gold' },
      hint: 'give every candidate one score and one gold value',
    });
  }
  const w = bestOfNWeights(pool.scores, n, where);
  let sum = 0;
  for (let i = 0; i < w.length; i++) sum += (w[i] as number) * (pool.gold[i] as number);
  return sum;
}

/** Mean and standard error of the mean (sample std / √P; 0 when P < 2). */
export function meanWithStderr(values: readonly number[]): { mean: number; stderr: number } {
  const P = values.length;
  if (P === 0) return { mean: Number.NaN, stderr: Number.NaN };
  const mean = values.reduce((a, b) => a + b, 0) / P;
  if (P < 2) return { mean, stderr: 0 };
  let ss = 0;
  for (const v of values) ss += (v - mean) ** 2;
  return { mean, stderr: Math.sqrt(ss / (P - 1) / P) };
}

/** A whole curve: for each n, every prompt's expected gold value and the mean ± stderr in percent. */
export function bestOfNCurve(
  pools: readonly EstimatorPool[],
  ns: readonly number[],
  names?: readonly string[],
): (CurvePoint & { readonly perPrompt: number[] })[] {
  return ns.map((n) => {
    const perPrompt = pools.map((p, i) => expectedBestOfN(p, n, names?.[i] ?? `pool ${i}`));
    const { mean, stderr } = meanWithStderr(perPrompt);
    return { n, winRate: 100 * mean, stderr: 100 * stderr, prompts: pools.length, perPrompt };
  });
}

/** Index of the highest value; the first one wins a tie (the documented selection rule). */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}
