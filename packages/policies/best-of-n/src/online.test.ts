// Online Best-of-n with a tiny untrained policy and ensemble on real AlpacaEval instructions.
import { createAggregationRule } from '@quorum/aggregation';
import { disposeGpt, type GptConfig, type GptParams, gptPreset, initGpt } from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, initCompute, Rng } from '@quorum/core';
import { datasets, type Prompt, projectTokenizer, type Tokenizer } from '@quorum/data';
import { builtinArchitectureRegistry, scoreAnswers, type TrainableEnsemble } from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax } from './estimator.js';
import { bestOfN, bestOfNStream, type RewardScorer, type SamplingPolicy } from './online.js';

let tokenizer: Tokenizer;
let config: GptConfig;
let params: GptParams;
let ensemble: TrainableEnsemble;
let prompts: Prompt[];
let policy: SamplingPolicy;
let reward: RewardScorer;

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
  params = initGpt(config, new Rng(3));
  ensemble = builtinArchitectureRegistry()
    .create('linear-heads')
    .build({ gptConfig: config, members: 3, rng: new Rng(1) });
  const data = await datasets.alpacaEval();
  prompts = data
    .split('eval')
    .slice(0, 2)
    .map((i) => data.prompt(i.id));
  policy = { params, config, tokenizer };
  reward = { ensemble, tokenizer, rule: createAggregationRule(['lcb', { beta: 1 }]) };
});

afterAll(() => {
  ensemble.dispose();
  disposeGpt(params);
});

describe('online Best-of-n', () => {
  it('returns the argmax of the aggregated scores, with every sample’s scores', () => {
    const results = bestOfN(policy, reward, prompts, {
      n: 6,
      chunkSize: 4,
      maxNewTokens: 8,
      seed: 5,
      keepAnswers: true,
    });
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.rule).toBe('lcb');
      expect(r.scores.aggregate).toHaveLength(6);
      expect(r.scores.members).toHaveLength(3);
      expect(r.best.index).toBe(argmax(r.scores.aggregate));
      expect(r.best.aggregate).toBe(Math.max(...r.scores.aggregate));
      expect(r.best.members).toEqual(r.scores.members.map((row) => row[r.best.index]));
      expect(r.answers?.[r.best.index]).toBe(r.best.answer);
      // the scores are the rule applied to the members' rewards
      const again = reward.rule.aggregateArrays(r.scores.members);
      for (let i = 0; i < 6; i++) {
        expect(r.scores.aggregate[i]).toBeCloseTo(again.aggregate[i] as number, 10);
        expect(r.scores.std[i]).toBeCloseTo(again.std[i] as number, 10);
      }
      // re-scoring the chosen text gives the reported member rewards
      const direct = scoreAnswers(ensemble, tokenizer, [{ prompt: r.prompt, answer: r.best.answer }]);
      for (let m = 0; m < 3; m++) expect(direct[m]?.[0]).toBeCloseTo(r.best.members[m] as number, 4);
      expect(r.best.tokens).toBeGreaterThan(0);
      expect(r.best.tokens).toBeLessThanOrEqual(8);
    }
  });

  it('is seeded: the same seed gives the same samples, another seed others', () => {
    const opts = { n: 4, chunkSize: 4, maxNewTokens: 6, keepAnswers: true };
    const a = bestOfN(policy, reward, prompts.slice(0, 1), { ...opts, seed: 9 });
    const b = bestOfN(policy, reward, prompts.slice(0, 1), { ...opts, seed: 9 });
    const c = bestOfN(policy, reward, prompts.slice(0, 1), { ...opts, seed: 10 });
    expect(b[0]?.answers).toEqual(a[0]?.answers);
    expect(b[0]?.scores).toEqual(a[0]?.scores);
    expect(c[0]?.answers).not.toEqual(a[0]?.answers);
  });

  it('runs n = 200 in chunks of 16 with a flat tensor count and keeps only scalars', () => {
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const done: number[] = [];
    const [r] = [
      ...bestOfNStream(
        policy,
        reward,
        prompts.slice(0, 1),
        { n: 200, chunkSize: 16, maxNewTokens: 4, seed: 1 },
        {
          onChunk: (p) => {
            counts.push(tf.memory().numTensors);
            done.push(p.done);
          },
        },
      ),
    ];
    expect(done).toHaveLength(13);
    expect(done.at(-1)).toBe(200);
    expect(counts.every((n) => n === before)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    expect(r?.scores.aggregate).toHaveLength(200);
    expect(r?.answers).toBeUndefined();
    expect(r?.best.index).toBe(argmax(r?.scores.aggregate ?? []));
  });

  it('rejects bad options naming the field', () => {
    expect(() => bestOfN(policy, reward, prompts, { n: 2, maxNewTokens: 60 })).toThrow(ConfigError);
    expect(() => bestOfN(policy, reward, prompts, { n: 2, maxNewTokens: 60 })).toThrow(/maxNewTokens/);
    expect(() => bestOfN(policy, reward, prompts, { n: 0 })).toThrow(/bestOfN\.n/);
    expect(() => bestOfN(policy, reward, prompts, { temprature: 1 } as never)).toThrow(
      /unknown option "temprature"/,
    );
  });
});
