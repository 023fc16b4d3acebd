// Offline Best-of-n on a real slice of the shipped AlpacaEval pools with a tiny untrained ensemble,
// and the baselines on the full eval split.
import { createAggregationRule } from '@quorum/aggregation';
import { type GptConfig, gptPreset } from '@quorum/backbone';
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import { datasets, projectTokenizer, type Tokenizer } from '@quorum/data';
import { builtinArchitectureRegistry, scoreAnswers, type TrainableEnsemble } from '@quorum/ensemble';
import { lengthControlledWinRate, rewardLengthCorrelation } from '@quorum/eval';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax, bestOfNWeights, expectedBestOfN, goldValue } from './estimator.js';
import {
  baselines,
  evaluateOffline,
  expectedForPool,
  type ScoredPool,
  scorePools,
  selectFromPool,
} from './offline.js';
import { type Pool, poolsFromAlpacaEval } from './pools.js';

let tokenizer: Tokenizer;
let config: GptConfig;
let ensemble: TrainableEnsemble;
let all: Pool[];
let slice: Pool[];
let scored: ScoredPool[];

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  tokenizer = projectTokenizer();
  config = gptPreset('nano', {
    vocabSize: tokenizer.vocabSize,
    dModel: 32,
    nLayers: 2,
    nHeads: 2,
    contextLength: 64,
  });
  ensemble = builtinArchitectureRegistry()
    .create('linear-heads')
    .build({ gptConfig: config, members: 3, rng: new Rng(1) });
  all = poolsFromAlpacaEval((await datasets.alpacaEval()).candidatePools('eval'));
  slice = all.slice(0, 8);
});

afterAll(() => ensemble.dispose());

describe('scorePools', () => {
  it('scores every candidate once, as scoreAnswers does, with flat tensor counts across chunks', () => {
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const progress: number[] = [];
    scored = scorePools(ensemble, tokenizer, slice, {
      chunkRows: 110,
      batchSize: 32,
      onProgress: (p) => {
        counts.push(tf.memory().numTensors);
        progress.push(p.pools);
      },
    });
    expect(progress).toEqual([2, 4, 6, 8]); // 48–51 answers per pool: two pools per chunk of 110
    expect(counts.every((c) => c === before)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    expect(scored.map((p) => p.rewards.length)).toEqual(slice.map(() => 3));
    const p3 = slice[3] as Pool;
    const direct = scoreAnswers(
      ensemble,
      tokenizer,
      p3.candidates.map((c) => ({ prompt: p3.prompt, answer: c.output })),
    );
    for (let m = 0; m < 3; m++)
      for (let i = 0; i < p3.candidates.length; i++)
        expect(scored[3]?.rewards[m]?.[i]).toBeCloseTo(direct[m]?.[i] as number, 5);
  });
});

describe('selection and the offline report', () => {
  it('picks the argmax of the aggregated scores, for every rule', () => {
    for (const spec of ['mean', ['lcb', { beta: 2 }], 'min', 'median'] as const) {
      const rule = createAggregationRule(spec);
      for (const pool of scored) {
        const agg = rule.aggregateArrays(pool.rewards).aggregate;
        const choice = selectFromPool(pool, rule);
        expect(choice.index).toBe(argmax(agg));
        expect(choice.aggregate).toBe(Math.max(...agg));
        expect(choice.gold).toBe(pool.candidates[choice.index]?.gold);
      }
    }
  });

  it('gives a finite curve within 0–100 per rule on 8 real eval instructions; n = 1 is the random baseline', () => {
    const rules = [
      { label: 'mean', rule: createAggregationRule('mean') },
      { label: 'lcb(beta=0.5)', rule: createAggregationRule(['lcb', { beta: 0.5 }]) },
    ];
    const report = evaluateOffline(scored, rules, [1, 2, 4, 8, 16, 32]);
    expect(report.prompts).toBe(8);
    for (const r of report.rules) {
      expect(r.curve.map((p) => p.n)).toEqual([1, 2, 4, 8, 16, 32]);
      for (const p of r.curve) {
        expect(Number.isFinite(p.winRate) && Number.isFinite(p.stderr)).toBe(true);
        expect(p.winRate).toBeGreaterThanOrEqual(0);
        expect(p.winRate).toBeLessThanOrEqual(100);
      }
      expect(r.curve[0]?.winRate).toBeCloseTo(report.baselines.random.winRate, 10);
    }
    // per-prompt numbers agree with the estimator applied directly
    const row = report.perPrompt[5];
    expect(row?.expected['lcb(beta=0.5)']?.[3]).toBeCloseTo(
      expectedForPool(scored[5] as ScoredPool, rules[1]!.rule, 8),
      12,
    );
    // at n = N the estimator is the pool's pick (no ties in float rewards)
    const pool = scored[0] as ScoredPool;
    const N = pool.candidates.length;
    const pick = selectFromPool(pool, rules[0]!.rule);
    expect(expectedForPool(pool, rules[0]!.rule, N)).toBeCloseTo(goldValue(pick.gold!), 12);
    expect(JSON.parse(JSON.stringify(report)).perPrompt).toHaveLength(8);
  });
});

describe('length control', () => {
  it('every point of 4 real instructions (n ≤ 4) carries the LC win rate, and rules the reward–length correlation', () => {
    const few = scored.slice(0, 4);
    expect(few.every((p) => typeof p.reference === 'string' && p.reference.length > 0)).toBe(true);
    const mean = createAggregationRule('mean');
    const report = evaluateOffline(few, [{ label: 'mean', rule: mean }], [1, 2, 4]);
    for (const p of [report.baselines.random, ...report.baselines.longest, ...report.rules[0]!.curve]) {
      expect(p.lc).toBeDefined();
      expect(p.lc!.winRate >= 0 && p.lc!.winRate <= 100 && Number.isFinite(p.lc!.stderr)).toBe(true);
    }
    expect(report.baselines.longest.map((p) => p.n)).toEqual([1, 2, 4]);
    // n = 1 is a uniform pick: one row per candidate, weight 1/N, grouped by prompt
    const rows = few.flatMap((p, i) =>
      p.candidates.map((c) => ({
        outcome: goldValue(c.gold!),
        lengthDelta: c.output.length - p.reference!.length,
        weight: 1 / p.candidates.length,
        group: i,
      })),
    );
    expect(report.baselines.random.lc!.winRate).toBeCloseTo(lengthControlledWinRate(rows).winRate, 10);
    expect(report.rules[0]!.curve[0]!.lc!.winRate).toBeCloseTo(report.baselines.random.lc!.winRate, 10);
    // the rule's n = 4 correlation: its aggregates against the lengths, weighted by the keep-probabilities
    const agg = few.map((p) => mean.aggregateArrays(p.rewards).aggregate);
    const w = agg.map((a) => Array.from(bestOfNWeights(a, 4)));
    const direct = rewardLengthCorrelation(
      agg.flat(),
      few.flatMap((p) => p.candidates.map((c) => c.output.length)),
      w.flat(),
    );
    expect(report.rules[0]!.curve[2]!.rewardLength.pearson).toBeCloseTo(direct.pearson, 12);
    expect(report.rules[0]!.curve[2]!.rewardLength.spearman).toBeCloseTo(direct.spearman, 12);
  });

  it('leaves LC out when a pool has no reference answer; a length-biased judge loses most of its edge', () => {
    const pool = (id: string, reference: string | undefined): ScoredPool => ({
      id,
      prompt: { instruction: id, input: '' },
      // the judge prefers longer answers: the two longest win, the short ones lose
      candidates: [
        { output: 'x'.repeat(10), gold: 'loss' },
        { output: 'x'.repeat(20), gold: 'loss' },
        { output: 'x'.repeat(60), gold: 'win' },
        { output: 'x'.repeat(80), gold: 'win' },
      ],
      rewards: [[0, 1, 2, 3]],
      ...(reference === undefined ? {} : { reference }),
    });
    const rule = [{ label: 'mean', rule: createAggregationRule('mean') }];
    const none = evaluateOffline([pool('a', undefined), pool('b', 'y'.repeat(40))], rule, [1, 4]);
    expect(none.rules[0]!.curve[1]!.lc).toBeUndefined();
    expect(none.baselines.random.lc).toBeUndefined();
    const both = evaluateOffline([pool('a', 'y'.repeat(40)), pool('b', 'y'.repeat(40))], rule, [1, 4]);
    const top = both.rules[0]!.curve[1]!;
    expect(top.winRate).toBe(100); // n = 4 always keeps the longest, which always wins
    expect(top.lc!.degenerate).toBe('constant-outcome'); // all picks win and all are +40: LC = raw
    const random = both.baselines.random;
    expect(random.winRate).toBe(50);
    // wins are explained by length (Δ = −30, −20 lose; +20, +40 win): separated, so only near 50
    expect(Math.abs(random.lc!.winRate - 50)).toBeLessThan(3);
    expect(random.lc!.lengthSlope).toBeGreaterThan(2);
    expect(both.rules[0]!.curve[0]!.rewardLength.pearson).toBeGreaterThan(0.9);
  });
});

describe('baselines on the full eval split (161 instructions)', () => {
  it('random and longest answer: finite, in 0–100, equal at n = 1', () => {
    const b = baselines(all, [1, 2, 4, 8, 16, 32]);
    const line = [`random ${b.random.winRate.toFixed(2)} ± ${b.random.stderr.toFixed(2)}`]
      .concat(b.longest.map((p) => `longest n=${p.n} ${p.winRate.toFixed(2)} ± ${p.stderr.toFixed(2)}`))
      .join('\n');
    process.stderr.write(`AlpacaEval eval split, gold win rate vs text_davinci_003 (%):\n${line}\n`);
    expect(b.random.prompts).toBe(161);
    expect(b.longest[0]?.winRate).toBeCloseTo(b.random.winRate, 10);
    for (const p of [b.random, ...b.longest]) {
      expect(Number.isFinite(p.winRate) && p.winRate >= 0 && p.winRate <= 100).toBe(true);
    }
    // the longest answer of a whole pool, computed directly, for one pool
    const p0 = all[0] as Pool;
    const lengths = p0.candidates.map((c) => c.output.length);
    const gold = p0.candidates.map((c) => goldValue(c.gold!));
    expect(expectedBestOfN({ scores: lengths, gold }, 32)).toBeGreaterThanOrEqual(0);
  });
});
