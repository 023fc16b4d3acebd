/**
 * The judge behind the shipped data prefers longer answers. These functions measure how often the
 * longer answer is the chosen one (by training weight) and rebalance a pair set so that "the longer
 * answer wins" holds for exactly half of its weight.
 */
import { ConfigError, Rng } from '@quorum/core';
import type { PreferencePair } from './types.js';

/** Answer length used for balancing; characters by default (tokenizer-independent). */
export type LengthOf = (text: string) => number;
const charLength: LengthOf = (text) => text.length;

export interface LongerWinsReport {
  /** Weighted share of the unequal-length, non-tie pairs where the chosen answer is the longer one. */
  readonly rate: number;
  /** Training weight of pairs where the longer answer wins, where the shorter wins, and of equal-length pairs. */
  readonly longer: number;
  readonly shorter: number;
  readonly equal: number;
  /** Pairs counted (ties excluded). */
  readonly pairs: number;
}

type Side = 'longer' | 'shorter' | 'equal';

function sideOf(pair: PreferencePair, lengthOf: LengthOf): Side {
  const c = lengthOf(pair.chosen);
  const r = lengthOf(pair.rejected);
  return c > r ? 'longer' : c < r ? 'shorter' : 'equal';
}

/** How strongly a pair set rewards length: the weighted longer-wins rate (ties left out). */
export function longerWins(
  pairs: readonly PreferencePair[],
  lengthOf: LengthOf = charLength,
): LongerWinsReport {
  const w = { longer: 0, shorter: 0, equal: 0 };
  let counted = 0;
  for (const pair of pairs) {
    if (pair.tie === true) continue;
    w[sideOf(pair, lengthOf)] += pair.weight ?? 1;
    counted++;
  }
  const decided = w.longer + w.shorter;
  return { rate: decided === 0 ? 0.5 : w.longer / decided, ...w, pairs: counted };
}

export interface BalanceOptions {
  /**
   * `weights`: keep every pair, scale weights so both groups carry half of their joint weight (the
   * total weight is unchanged). `sample`: keep every pair of the smaller group and a seeded random
   * subset of the larger one of the same size (weights ignored).
   */
  readonly method: 'weights' | 'sample';
  readonly seed?: number;
  readonly lengthOf?: LengthOf;
}

/** A copy of `pairs` in which the longer answer wins exactly half of the (weight of) decided pairs. */
export function balanceLength(pairs: readonly PreferencePair[], options: BalanceOptions): PreferencePair[] {
  const lengthOf = options.lengthOf ?? charLength;
  const sides = pairs.map((p) => (p.tie === true ? 'equal' : sideOf(p, lengthOf)));
  const report = longerWins(pairs, lengthOf);
  if (report.longer === 0 || report.shorter === 0) {
    throw new ConfigError(
      `cannot balance lengths: no pair where the ${report.longer === 0 ? 'longer' : 'shorter'} answer wins (${report.pairs} pairs)`,
      {
        location: { field: 'balance' },
        hint: 'use balance "none" for this pair set, or add pairs of the missing kind',
      },
    );
  }
  if (options.method === 'weights') {
    const half = (report.longer + report.shorter) / 2;
    const scale = { longer: half / report.longer, shorter: half / report.shorter, equal: 1 };
    return pairs.map((p, i) =>
      sides[i] === 'equal' ? p : { ...p, weight: (p.weight ?? 1) * scale[sides[i] as Side] },
    );
  }
  const longer = sides.flatMap((s, i) => (s === 'longer' ? [i] : []));
  const shorter = sides.flatMap((s, i) => (s === 'shorter' ? [i] : []));
  const [big, small] = longer.length > shorter.length ? [longer, shorter] : [shorter, longer];
  const keep = new Set(
    new Rng(options.seed ?? 0)
      .fork('balance-length')
      .shuffle([...big])
      .slice(0, small.length),
  );
  const drop = new Set(big.filter((i) => !keep.has(i)));
  return pairs.filter((_, i) => !drop.has(i));
}
