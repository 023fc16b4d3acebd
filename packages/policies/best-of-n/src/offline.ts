/**
 * Offline Best-of-n: score every candidate of every pool once with the ensemble (streaming chunks, only
 * numbers kept), aggregate with any rule, pick the argmax, and turn each pool into a whole win-rate
 * curve over n with the unbiased estimator. The baselines every reward model must beat come from the
 * same estimator: "random" (n = 1: any score) and "longest" (length in characters as the score).
 *
 * When every pool knows its reference answer, each point also carries AlpacaEval 2's length-controlled
 * win rate (@quorum/eval's `lengthControlledWinRate`) of the Best-of-n picks: every candidate is one row,
 * weighted by the probability that Best-of-n keeps it at that n (the estimator's weights, summing to 1 per
 * prompt), its gold value the outcome, len(candidate) − len(reference) in characters the length, its
 * prompt the group of the standard error. Each rule's point also carries the correlation of its
 * aggregate reward with the picked answers' length (Pearson and Spearman, weighted the same way).
 */
import type { AggregationRule } from '@quorum/aggregation';
import { DataError } from '@quorum/core';
import type { TextTokenizer } from '@quorum/data';
import { type RewardEnsemble, scoreAnswers } from '@quorum/ensemble';
import { type LengthRow, lengthControlledWinRate, rewardLengthCorrelation } from '@quorum/eval';
import { type OfflineBestOfNConfigInput, resolveOfflineBestOfNConfig } from './config.js';
import {
  argmax,
  bestOfNCurve,
  bestOfNWeights,
  type CurvePoint,
  type EstimatorPool,
  expectedBestOfN,
  type GoldLabel,
  goldValue,
} from './estimator.js';
import type { Pool } from './pools.js';

/** A pool with every member's reward for every candidate. */
export interface ScoredPool extends Pool {
  /** rewards[m][i]: member m's reward for candidate i. `[k][N]` */
  readonly rewards: number[][];
}

/** Reported after each scored chunk. */
export interface ScoreProgress {
  readonly rows: number;
  readonly totalRows: number;
  readonly pools: number;
  readonly totalPools: number;
}

export interface ScorePoolsOptions
  extends Pick<OfflineBestOfNConfigInput, 'batchSize' | 'chunkRows' | 'maxLength'> {
  /** Called after each chunk (e.g. a progress line on stderr). */
  readonly onProgress?: (progress: ScoreProgress) => void;
}

/**
 * Scores every candidate once: chunks of about `chunkRows` candidates (whole pools) go through
 * `scoreAnswers`, `batchSize` sequences per forward pass; no tensor outlives a batch.
 */
export function scorePools(
  ensemble: RewardEnsemble,
  tokenizer: TextTokenizer,
  pools: readonly Pool[],
  options: ScorePoolsOptions = {},
): ScoredPool[] {
  const { onProgress, ...rest } = options;
  const config = resolveOfflineBestOfNConfig(rest, 'scorePools');
  const totalRows = pools.reduce((n, p) => n + p.candidates.length, 0);
  const out: ScoredPool[] = [];
  let rows = 0;
  for (let at = 0; at < pools.length; ) {
    let end = at;
    let chunkRows = 0;
    while (
      end < pools.length &&
      (chunkRows === 0 || chunkRows + (pools[end] as Pool).candidates.length <= config.chunkRows)
    )
      chunkRows += (pools[end++] as Pool).candidates.length;
    const chunk = pools.slice(at, end);
    const answers = chunk.flatMap((p) => p.candidates.map((c) => ({ prompt: p.prompt, answer: c.output })));
    const rewards = scoreAnswers(ensemble, tokenizer, answers, {
      batchSize: config.batchSize,
      ...(config.maxLength === undefined ? {} : { maxLength: config.maxLength }),
    }); // [k][rows of the chunk]
    let offset = 0;
    for (const p of chunk) {
      const N = p.candidates.length;
      out.push({ ...p, rewards: rewards.map((row) => row.slice(offset, offset + N)) });
      offset += N;
    }
    rows += chunkRows;
    at = end;
    onProgress?.({ rows, totalRows, pools: at, totalPools: pools.length });
  }
  return out;
}

/** The candidate a rule picks from a whole pool, with its scores. */
export interface PoolChoice {
  /** Index in the pool of the highest aggregate (the first one on a tie). */
  readonly index: number;
  readonly generator?: string | undefined;
  readonly aggregate: number;
  readonly mean: number;
  readonly std: number;
  readonly gold?: GoldLabel | undefined;
}

/** Aggregates a scored pool with `rule` and picks the argmax (first index on a tie). */
export function selectFromPool(
  pool: ScoredPool,
  rule: AggregationRule,
): PoolChoice & { aggregates: number[] } {
  const r = rule.aggregateArrays(pool.rewards);
  const index = argmax(r.aggregate);
  const c = pool.candidates[index];
  return {
    index,
    generator: c?.generator,
    aggregate: r.aggregate[index] as number,
    mean: r.mean[index] as number,
    std: r.std[index] as number,
    gold: c?.gold,
    aggregates: r.aggregate,
  };
}

/** A rule with the name it has in reports (two `lcb`s with different β need two labels). */
export interface LabelledRule {
  readonly label: string;
  readonly rule: AggregationRule;
}

/** AlpacaEval 2's length-controlled win rate of one point (percent), from @quorum/eval's fit. */
export interface LengthControlledPoint {
  readonly winRate: number;
  /** Delta method over a cluster-robust covariance (prompts are the clusters); 0 when it is undefined. */
  readonly stderr: number;
  /** The fitted coefficient of tanh(Δlen / sd): > 0 when the judge favours the longer of the picks. */
  readonly lengthSlope: number;
  /** Set when the fit is degenerate (constant outcome or constant length difference): LC = raw then. */
  readonly degenerate?: 'constant-outcome' | 'constant-length';
}

/** Correlation of a rule's aggregate reward with the picked answers' length (NaN, written null, when constant). */
export interface RewardLengthPoint {
  readonly pearson: number;
  readonly spearman: number;
}

/** A curve point with the length-controlled win rate (when the pools have references). */
export interface BaselinePoint extends CurvePoint {
  readonly lc?: LengthControlledPoint;
}

/** A rule's curve point: raw and length-controlled win rate, and the reward–length correlation of the picks. */
export interface RuleCurvePoint extends BaselinePoint {
  readonly rewardLength: RewardLengthPoint;
}

export interface Baselines {
  /** n = 1: a uniformly random candidate (what any score gives at n = 1, and a random pick at any n). */
  readonly random: BaselinePoint;
  /** Best-of-n with the answer's length in characters as the score (the length bias to beat). */
  readonly longest: BaselinePoint[];
}

export interface OfflinePromptRow {
  readonly id: string;
  readonly instruction: string;
  readonly candidates: number;
  /** Per rule label: the candidate picked from the whole pool. */
  readonly best: Record<string, PoolChoice>;
  /** Per rule label: expected gold value at each n of `ns` (0–1). */
  readonly expected: Record<string, number[]>;
  /** The baselines' expected gold values: random (n = 1) and longest at each n. */
  readonly random: number;
  readonly longest: number[];
}

export interface OfflineReport {
  readonly prompts: number;
  readonly ns: number[];
  readonly rules: { readonly label: string; readonly rule: string; readonly curve: RuleCurvePoint[] }[];
  readonly baselines: Baselines;
  readonly perPrompt: OfflinePromptRow[];
}

function goldOf(pool: Pool): number[] {
  return pool.candidates.map((c, i) => {
    if (c.gold === undefined) {
      throw new DataError(
        `pool ${pool.id}: candidate ${i} has no gold verdict, so no win rate can be estimated`,
        {
          location: { field: 'gold' },
          hint: 'give every candidate "gold": "win" | "loss" | "draw", or only select (selectFromPool)',
        },
      );
    }
    return goldValue(c.gold);
  });
}

const strip = ({ perPrompt: _, ...point }: CurvePoint & { perPrompt: number[] }): CurvePoint => point;

/** len(candidate) − len(reference) per candidate, or undefined when a pool lacks its reference. */
function lengthDeltas(pools: readonly Pool[]): number[][] | undefined {
  if (pools.some((p) => p.reference === undefined)) return undefined;
  return pools.map((p) => p.candidates.map((c) => c.output.length - (p.reference as string).length));
}

/** Best-of-n's keep-probabilities for every pool at n (`scores[i]` per pool). */
function weightsAt(
  scores: readonly (readonly number[])[],
  n: number,
  names: readonly string[],
): Float64Array[] {
  return scores.map((s, i) => bestOfNWeights(s, n, names[i]));
}

/** The LC win rate of the picks whose keep-probabilities are `weights` (see this file's header). */
function lcPoint(
  weights: readonly Float64Array[],
  gold: readonly (readonly number[])[],
  deltas: readonly (readonly number[])[],
): LengthControlledPoint {
  const rows: LengthRow[] = [];
  weights.forEach((w, i) => {
    for (let j = 0; j < w.length; j++) {
      if ((w[j] as number) > 0)
        rows.push({
          outcome: gold[i]?.[j] as number,
          lengthDelta: deltas[i]?.[j] as number,
          weight: w[j] as number,
          group: i,
        });
    }
  });
  const fit = lengthControlledWinRate(rows);
  return {
    winRate: fit.winRate,
    stderr: Number.isFinite(fit.stderr) ? fit.stderr : 0,
    lengthSlope: fit.lengthSlope,
    ...(fit.degenerate === undefined ? {} : { degenerate: fit.degenerate }),
  };
}

/** Weighted reward–length correlation of the picks over all prompts' candidates. */
function rewardLengthPoint(
  weights: readonly Float64Array[],
  rewards: readonly (readonly number[])[],
  pools: readonly Pool[],
): RewardLengthPoint {
  const r: number[] = [];
  const l: number[] = [];
  const w: number[] = [];
  weights.forEach((wi, i) => {
    const cands = (pools[i] as Pool).candidates;
    for (let j = 0; j < wi.length; j++) {
      r.push(rewards[i]?.[j] as number);
      l.push((cands[j] as { output: string }).output.length);
      w.push(wi[j] as number);
    }
  });
  const c = rewardLengthCorrelation(r, l, w);
  return { pearson: c.pearson, spearman: c.spearman };
}

/** The random and longest-answer baselines over `pools` (no model needed). */
export function baselines(
  pools: readonly Pool[],
  ns: readonly number[],
): Baselines & { perPrompt: { random: number[]; longest: number[][] } } {
  const names = pools.map((p) => p.id);
  const byLength: EstimatorPool[] = pools.map((p) => ({
    scores: p.candidates.map((c) => c.output.length),
    gold: goldOf(p),
  }));
  const random = bestOfNCurve(byLength, [1], names)[0] as CurvePoint & { perPrompt: number[] };
  const longest = bestOfNCurve(byLength, ns, names);
  const deltas = lengthDeltas(pools);
  const gold = byLength.map((p) => p.gold);
  const lc = (n: number): { lc?: LengthControlledPoint } =>
    deltas === undefined
      ? {}
      : {
          lc: lcPoint(
            weightsAt(
              byLength.map((p) => p.scores),
              n,
              names,
            ),
            gold,
            deltas,
          ),
        };
  return {
    random: { ...strip(random), ...lc(1) },
    longest: longest.map((pt) => ({ ...strip(pt), ...lc(pt.n) })),
    perPrompt: {
      random: random.perPrompt,
      longest: pools.map((_, i) => longest.map((pt) => pt.perPrompt[i] as number)),
    },
  };
}

/**
 * The offline report: for each rule, the pool's pick and the win-rate curve over `ns` (mean over prompts
 * in percent ± stderr), plus the random and longest baselines, and every prompt's numbers.
 */
export function evaluateOffline(
  scored: readonly ScoredPool[],
  rules: readonly LabelledRule[],
  ns: readonly number[] = [1, 2, 4, 8, 16, 32],
): OfflineReport {
  const names = scored.map((p) => p.id);
  const gold = scored.map(goldOf);
  const base = baselines(scored, ns);
  const deltas = lengthDeltas(scored);
  const perRule = rules.map(({ label, rule }) => {
    const choices = scored.map((p) => selectFromPool(p, rule));
    const aggregates = choices.map((c) => c.aggregates);
    const curve = bestOfNCurve(
      choices.map((c, i) => ({ scores: c.aggregates, gold: gold[i] as number[] })),
      ns,
      names,
    );
    const length = ns.map((n) => {
      const w = weightsAt(aggregates, n, names);
      return {
        rewardLength: rewardLengthPoint(w, aggregates, scored),
        ...(deltas === undefined ? {} : { lc: lcPoint(w, gold, deltas) }),
      };
    });
    return { label, rule: rule.name, choices, curve, length };
  });
  const perPrompt = scored.map((p, i): OfflinePromptRow => {
    const best: Record<string, PoolChoice> = {};
    const expected: Record<string, number[]> = {};
    for (const r of perRule) {
      const { aggregates: _, ...choice } = r.choices[i] as PoolChoice & { aggregates: number[] };
      best[r.label] = choice;
      expected[r.label] = r.curve.map((pt) => pt.perPrompt[i] as number);
    }
    return {
      id: p.id,
      instruction: p.prompt.instruction,
      candidates: p.candidates.length,
      best,
      expected,
      random: base.perPrompt.random[i] as number,
      longest: base.perPrompt.longest[i] as number[],
    };
  });
  return {
    prompts: scored.length,
    ns: [...ns],
    rules: perRule.map((r) => ({
      label: r.label,
      rule: r.rule,
      curve: r.curve.map((pt, j) => ({
        ...strip(pt),
        ...(r.length[j] as Omit<RuleCurvePoint, keyof CurvePoint>),
      })),
    })),
    baselines: { random: base.random, longest: base.longest },
    perPrompt,
  };
}

/** Expected gold value of Best-of-n for one scored pool under `rule` (0–1). */
export function expectedForPool(pool: ScoredPool, rule: AggregationRule, n: number): number {
  return expectedBestOfN(
    { scores: rule.aggregateArrays(pool.rewards).aggregate, gold: goldOf(pool) },
    n,
    pool.id,
  );
}
