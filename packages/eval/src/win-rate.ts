/**
 * Win rates and their uncertainty, as AlpacaEval reports them: a percentage (0–100) with the standard
 * error of the mean over items (sample std, n − 1). Draws count half. Reward-model accuracy and
 * calibration live in @quorum/ensemble (`rewardMetrics`, `expectedCalibrationError`).
 */
import { ConfigError } from '@quorum/core';
import type { Verdict } from './judge.js';

/** One item's result against the reference: a verdict word, or a preference in [0, 1] (1 = win). */
export type Outcome = 'win' | 'tie' | 'loss' | number;

export interface WinRate {
  /** Mean preference × 100. */
  readonly winRate: number;
  /** Standard error of winRate over items (× 100); NaN for a single item. */
  readonly stderr: number;
  readonly n: number;
  readonly wins: number;
  readonly ties: number;
  readonly losses: number;
}

export interface MeanStderr {
  readonly mean: number;
  /** Sample standard deviation (n − 1); NaN for n = 1. */
  readonly sd: number;
  /** sd / √n; NaN for n = 1. */
  readonly stderr: number;
  readonly n: number;
}

/** Mean, sample std and standard error of the mean. Throws on an empty list or a non-finite value. */
export function meanStderr(values: readonly number[], what = 'values'): MeanStderr {
  const n = values.length;
  if (n === 0) {
    throw new ConfigError(`no ${what} to average`, { hint: 'pass at least one value' });
  }
  let sum = 0;
  for (const [i, v] of values.entries()) {
    if (!Number.isFinite(v)) {
      throw new ConfigError(`${what}[${i}] is ${v}, not a finite number`, {
        hint: 'drop failed items first',
      });
    }
    sum += v;
  }
  const mean = sum / n;
  if (n === 1) return { mean, sd: Number.NaN, stderr: Number.NaN, n };
  let ss = 0;
  for (const v of values) ss += (v - mean) ** 2;
  const sd = Math.sqrt(ss / (n - 1));
  return { mean, sd, stderr: sd / Math.sqrt(n), n };
}

function preference(o: Outcome, i: number): number {
  if (o === 'win') return 1;
  if (o === 'loss') return 0;
  if (o === 'tie') return 0.5;
  if (typeof o === 'number' && o >= 0 && o <= 1) return o;
  throw new ConfigError(`outcome ${i} is ${JSON.stringify(o)}`, {
    location: { field: `outcomes[${i}]` },
    hint: 'use "win", "tie", "loss" or a preference in [0, 1]',
  });
}

/** Win rate (0–100) against the reference with its standard error over items; draws count half. */
export function winRate(outcomes: readonly Outcome[]): WinRate {
  const prefs = outcomes.map(preference);
  const { mean, stderr, n } = meanStderr(prefs, 'outcomes');
  let wins = 0;
  let ties = 0;
  let losses = 0;
  for (const p of prefs) {
    if (p > 0.5) wins++;
    else if (p < 0.5) losses++;
    else ties++;
  }
  return { winRate: 100 * mean, stderr: 100 * stderr, n, wins, ties, losses };
}

/**
 * The outcome of `a` (the answer under test) from a judge's verdict against the reference `b`:
 * `'verdict'` uses the winner (AlpacaEval 1 style), `'probability'` uses p when the judge gave one
 * (AlpacaEval 2's weighted win rate), else the winner.
 */
export function outcomeOf(verdict: Verdict, use: 'verdict' | 'probability' = 'verdict'): Outcome {
  if (use === 'probability' && verdict.p !== undefined) return verdict.p;
  return verdict.winner === 'a' ? 'win' : verdict.winner === 'b' ? 'loss' : 'tie';
}

export interface SeedSpread {
  readonly mean: number;
  /** Sample std over seeds (NaN for one seed). */
  readonly sd: number;
  readonly min: number;
  readonly max: number;
  readonly seeds: number;
}

/** The spread of one figure (e.g. a win rate) over seeds. */
export function seedSpread(perSeed: readonly number[]): SeedSpread {
  const { mean, sd, n } = meanStderr(perSeed, 'per-seed values');
  return { mean, sd, min: Math.min(...perSeed), max: Math.max(...perSeed), seeds: n };
}

/** One measurement of an over-optimisation curve: gold and proxy reward at one x (KL or n). */
export interface CurvePoint {
  /** Series label, e.g. `lora/lcb`. */
  readonly series: string;
  /** KL to the reference policy, or the n of Best-of-n. */
  readonly x: number;
  readonly gold: number;
  readonly proxy: number;
}

export interface CurveSeries {
  readonly name: string;
  /** Sorted by x; points with equal x (seeds) are averaged with their standard error. */
  readonly points: readonly {
    readonly x: number;
    readonly gold: number;
    readonly goldStderr: number;
    readonly proxy: number;
    readonly proxyStderr: number;
    /** proxy − gold: how much the proxy over-states the gain. */
    readonly gap: number;
    readonly count: number;
  }[];
  /** x at the highest gold reward: where optimising further starts to hurt. */
  readonly peakX: number;
}

/**
 * Over-optimisation curves (Gao et al. 2023): gold vs proxy reward against KL or n. Points in, one series
 * per label out, each sorted by x, repeated x values (seeds) averaged. Series keep first-seen order.
 */
export function overoptimizationCurve(points: readonly CurvePoint[]): CurveSeries[] {
  const bySeries = new Map<string, Map<number, CurvePoint[]>>();
  for (const [i, p] of points.entries()) {
    for (const k of ['x', 'gold', 'proxy'] as const) {
      if (!Number.isFinite(p[k])) {
        throw new ConfigError(`point ${i} has ${k} = ${p[k]}`, {
          location: { field: `points[${i}].${k}` },
          hint: 'pass finite numbers',
        });
      }
    }
    let s = bySeries.get(p.series);
    if (s === undefined) bySeries.set(p.series, (s = new Map()));
    let at = s.get(p.x);
    if (at === undefined) s.set(p.x, (at = []));
    at.push(p);
  }
  const out: CurveSeries[] = [];
  for (const [name, byX] of bySeries) {
    const pts = [...byX.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([x, ps]) => {
        const g = meanStderr(ps.map((p) => p.gold));
        const q = meanStderr(ps.map((p) => p.proxy));
        const se = (m: MeanStderr): number => (m.n === 1 ? 0 : m.stderr);
        return {
          x,
          gold: g.mean,
          goldStderr: se(g),
          proxy: q.mean,
          proxyStderr: se(q),
          gap: q.mean - g.mean,
          count: ps.length,
        };
      });
    let peak = pts[0]!;
    for (const p of pts) if (p.gold > peak.gold) peak = p;
    out.push({ name, points: pts, peakX: peak.x });
  }
  return out;
}
