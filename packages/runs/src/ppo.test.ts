// `runPpo` as `quorum ppo` and `quorum reproduce` call it: a nano policy folder, a reward-model folder, a few
// steps, with the evaluation hook; what every step logs about the KL, and how reproduce decodes eval answers.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { meanRule } from '@quorum/aggregation';
import { disposeGpt, gptPreset, initGpt, savePolicy } from '@quorum/backbone';
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import { builtinArchitectureRegistry } from '@quorum/ensemble';
import { type PpoStepLog, resolvePpoConfig } from '@quorum/ppo';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerPrompts } from './answer.js';
import { loadPolicyWithTokenizer } from './load.js';
import { formatPpoStep, runPpo } from './ppo.js';
import { PRESETS } from './presets.js';
import { PPO_EVAL_DECODING, ppoRunName } from './reproduce.js';
import { loadPairs, resolveArchitecture, runRewardTraining } from './reward.js';

const dir = mkdtempSync(path.join(tmpdir(), 'quorum-runs-ppo-'));
const policyDir = path.join(dir, 'policy');
const rmDir = path.join(dir, 'rm');
const architectures = builtinArchitectureRegistry();

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  const tokenizer = projectTokenizer();
  const config = gptPreset('nano', { vocabSize: tokenizer.vocabSize, nLayers: 1, contextLength: 96 });
  const params = initGpt(config, new Rng(3));
  await savePolicy(policyDir, {
    config,
    params,
    vocab: { id: tokenizer.id, size: tokenizer.vocabSize },
    tokenizerFiles: tokenizer.files(),
  });
  disposeGpt(params);
  const pairs = await loadPairs({ data: 'alpaca-eval', trainLimit: 16, evalLimit: 8, seed: 0 });
  await runRewardTraining({
    architecture: resolveArchitecture(architectures, 'linear-heads'),
    members: 2,
    size: 'nano',
    contextLength: 96,
    init: policyDir,
    train: pairs.train,
    eval: pairs.eval,
    dataDescription: pairs.description,
    config: { batchSize: 8, maxSteps: 1, seed: 0 },
    out: rmDir,
    resume: false,
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const prompts = [
  { instruction: 'Say hello.', input: '' },
  { instruction: 'Name a colour.', input: '' },
  { instruction: 'Add the numbers.', input: '2 and 3' },
];

describe('runPpo', () => {
  it('logs every step with the KL of each estimator (0 at the first step) and evaluates at 0, 2, 4', async () => {
    const out = path.join(dir, 'ppo');
    const logs: PpoStepLog[] = [];
    const lines: string[] = [];
    const evaluated: { step: number; last: PpoStepLog | undefined }[] = [];
    const before = tf.memory().numTensors;
    const summary = await runPpo(
      {
        policy: policyDir,
        reward: rmDir,
        architectures,
        rule: meanRule(),
        prompts,
        ppo: resolvePpoConfig({
          steps: 4,
          rolloutBatch: 4,
          stepBatch: 4,
          maxNewTokens: 8,
          lr: 1e-3,
          warmupSteps: 0,
        }),
        out,
        resume: false,
        evaluate: {
          every: 2,
          run: async ({ step, last }) => {
            evaluated.push({ step, last });
          },
        },
      },
      { update: (_d, _t, detail) => lines.push(detail ?? ''), log: () => {} },
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(summary.steps).toBe(4);
    expect(evaluated.map((e) => [e.step, e.last?.step])).toEqual([
      [0, undefined],
      [2, 2],
      [4, 4],
    ]);
    for (const line of readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n'))
      logs.push(JSON.parse(line) as PpoStepLog);
    expect(logs.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    // the first rollout comes from the policy before any update: the policy is the reference
    expect([logs[0]?.kl, logs[0]?.klK1, logs[0]?.klK3, logs[0]?.klFull]).toEqual([0, 0, 0, 0]);
    for (const l of logs) {
      expect(l.klEstimator).toBe('k1');
      expect(l.kl).toBe(l.klK1);
      expect(l.klK3).toBeGreaterThanOrEqual(0);
      expect(l.klFull).toBeGreaterThanOrEqual(0);
      expect(l.memberRewards).toHaveLength(2);
    }
    expect(logs[3]?.klFull).toBeGreaterThan(0);
    expect(lines.at(-1)).toMatch(/kl -?\d+\.\d{4} \(k1; full \d+\.\d{4}\)/);
    expect(existsSync(path.join(out, 'backbone.safetensors'))).toBe(true);
  });
});

describe('formatPpoStep', () => {
  it('names the estimator of the penalty and shows the full-distribution KL beside it', () => {
    const log = {
      step: 3,
      steps: 4,
      reward: -1.5,
      memberRewards: [-1, -2],
      rewardStd: 0.5,
      kl: -0.0312,
      klEstimator: 'k1',
      klK1: -0.0312,
      klK3: 0.02,
      klFull: 0.0251,
      entropy: 3.2,
      policyLoss: 0.01,
      valueLoss: 0.2,
      clipFraction: 0,
      valueClipFraction: 0,
      approxKl: 0,
      klCoef: 0.02,
      lr: 1e-4,
      responseLength: 8,
      eosRate: 0,
      seconds: 1,
    } satisfies PpoStepLog;
    expect(formatPpoStep(log)).toContain('kl -0.0312 (k1; full 0.0251)');
  });
});

describe("reproduce's PPO evaluation", () => {
  it('decodes as the paper (T 0.7, top-p 0.9), so the SFT policy against itself is the same answers (50%)', async () => {
    expect(PPO_EVAL_DECODING).toMatchObject({ temperature: 0.7, topP: 0.9 });
    const policy = await loadPolicyWithTokenizer(policyDir);
    try {
      const decoding = { ...PPO_EVAL_DECODING, maxNewTokens: 8, seed: 9000, label: 'ppo-eval' };
      const a = answerPrompts(policy, prompts, decoding);
      expect(answerPrompts(policy, prompts, decoding)).toEqual(a);
      // sampled, not greedy: another seed gives other answers
      expect(answerPrompts(policy, prompts, { ...decoding, seed: 9001 })).not.toEqual(a);
    } finally {
      disposeGpt(policy.params);
    }
  });

  it('runs mean in smoke and default, mean and lcb in full, each in its own folder', () => {
    expect([PRESETS.smoke.ppo.rules, PRESETS.default.ppo.rules, PRESETS.full.ppo.rules]).toEqual([
      ['mean'],
      ['mean'],
      ['mean', 'lcb'],
    ]);
    expect(PRESETS.full.ppo.seeds).toBeGreaterThan(1);
    expect([ppoRunName('lora', 'mean', 0), ppoRunName('lora', 'lcb', 2)]).toEqual(['lora-s0', 'lora-lcb-s2']);
  });
});
