import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { meanRule } from '@quorum/aggregation';
import {
  AdamW,
  disposeGpt,
  type GptConfig,
  gptPreset,
  initGpt,
  loadPolicy,
  makeSftBatch,
  namedParameters,
  sftLoss,
  valueAndGrads,
} from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, initCompute, Rng } from '@quorum/core';
import {
  encodePromptResponse,
  HfTokenizer,
  loadTokenizer,
  type Prompt,
  projectTokenizer,
  Tokenizer,
} from '@quorum/data';
import { builtinArchitectureRegistry, type TrainableEnsemble } from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPpoCheckpointEvery, type PpoConfigInput, resolvePpoConfig } from './ppo-config.js';
import { type PpoStepLog, PpoTrainer, type PpoTrainerOptions } from './ppo-trainer.js';

const tokenizer = projectTokenizer();
const gptConfig: GptConfig = gptPreset('nano', {
  vocabSize: tokenizer.vocabSize,
  dModel: 32,
  nLayers: 2,
  nHeads: 2,
  contextLength: 64,
});
const prompts: Prompt[] = [
  { instruction: 'Say hello.', input: '' },
  { instruction: 'Name a colour.', input: '' },
  { instruction: 'Add the numbers.', input: '2 and 3' },
];
const tiny: PpoConfigInput = {
  steps: 3,
  rolloutBatch: 4,
  stepBatch: 2,
  maxNewTokens: 8,
  lr: 1e-3,
  warmupSteps: 1,
  seed: 7,
};

let dir: string;
let ensemble: TrainableEnsemble;
beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  dir = await mkdtemp(path.join(tmpdir(), 'quorum-ppo-'));
  ensemble = builtinArchitectureRegistry()
    .create('linear-heads')
    .build({ gptConfig, members: 3, rng: new Rng(1) });
});
afterAll(async () => {
  ensemble.dispose();
  await rm(dir, { recursive: true, force: true });
});

function makeTrainer(
  ppo: PpoConfigInput,
  outDir?: string,
  extra: Pick<PpoTrainerOptions, 'onProgress' | 'signal' | 'settings' | 'forceResume' | 'onNote'> = {},
) {
  const params = initGpt(gptConfig, new Rng(3));
  const trainer = new PpoTrainer({
    policy: { config: gptConfig, params, tokenizer },
    reward: { ensemble, tokenizer, rule: meanRule() },
    prompts,
    ppo: resolvePpoConfig(ppo),
    outDir,
    ...extra,
  });
  return {
    trainer,
    params,
    dispose: () => {
      trainer.dispose();
      disposeGpt(params);
    },
  };
}

function snapshot(trainer: PpoTrainer, params: ReturnType<typeof initGpt>): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [n, v] of Object.entries(namedParameters(params))) out[n] = v.dataSync() as Float32Array;
  out['value_head.w'] = trainer.valueHead.w.dataSync() as Float32Array;
  out['value_head.b'] = trainer.valueHead.b.dataSync() as Float32Array;
  return out;
}

describe('PpoTrainer', () => {
  it('starts at KL 0 (policy = reference, k1 and k3), runs steps without leaking, losses finite', () => {
    for (const klEstimator of ['k1', 'k3'] as const) {
      const { trainer, dispose } = makeTrainer({ ...tiny, klEstimator });
      const first = trainer.trainStep();
      // the first rollout is scored before any update: every estimate is exactly 0, not just close
      expect([first.kl, first.klK1, first.klK3, first.klFull]).toEqual([0, 0, 0, 0]);
      expect(first.klEstimator).toBe(klEstimator);
      const before = tf.memory().numTensors;
      const logs = [trainer.trainStep(), trainer.trainStep()];
      expect(tf.memory().numTensors).toBe(before);
      for (const l of [first, ...logs]) {
        for (const x of [l.policyLoss, l.valueLoss, l.reward, l.kl, l.entropy, l.approxKl, l.clipFraction])
          expect(Number.isFinite(x)).toBe(true);
        expect(l.memberRewards).toHaveLength(3);
      }
      expect(logs[1]?.step).toBe(3);
      expect(logs[1]?.kl).not.toBe(0); // the policy has moved away from the reference
      for (const l of logs) {
        // `kl` is the penalty's estimator; k3 and the full-distribution KL are never negative
        expect(l.kl).toBe(klEstimator === 'k1' ? l.klK1 : l.klK3);
        expect(l.klK3).toBeGreaterThanOrEqual(0);
        expect(l.klFull).toBeGreaterThan(0);
      }
      dispose();
    }
  });

  it('a resumed run equals an uninterrupted one (2 steps vs 1 + resume + 1)', async () => {
    const straight = makeTrainer(tiny, path.join(dir, 'straight'));
    await straight.trainer.train({ stopAtStep: 2 });
    const expected = snapshot(straight.trainer, straight.params);
    straight.dispose();

    const outDir = path.join(dir, 'resumed');
    const first = makeTrainer(tiny, outDir);
    await first.trainer.train({ stopAtStep: 1 });
    first.dispose();
    const second = makeTrainer(tiny, outDir);
    expect(await second.trainer.resume()).toBe(1);
    await second.trainer.train({ stopAtStep: 2 });
    const actual = snapshot(second.trainer, second.params);
    second.dispose();

    for (const [name, data] of Object.entries(expected)) expect(actual[name], name).toEqual(data);
    const lines = readFileSync(path.join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as PpoStepLog).step)).toEqual([1, 2]);
  });

  it('refuses to resume with another seed, lr or steps (saved vs now) unless forceResume, which quorum.json records', async () => {
    const outDir = path.join(dir, 'settings');
    const settings = { policy: 'runs/sft', reward: 'runs/rm' };
    const first = makeTrainer({ ...tiny, steps: 2 }, outDir, { settings });
    await first.trainer.train({ stopAtStep: 1 });
    first.dispose();
    const changed = { ...tiny, steps: 3, seed: 8, lr: 1e-4, checkpointEvery: 1 };
    const refused = makeTrainer(changed, outDir, { settings });
    const error = await refused.trainer.resume().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const line of ['steps: saved 2, now 3', 'seed: saved 7, now 8', 'lr: saved 0.001, now 0.0001'])
      expect(message).toContain(line);
    expect(message).not.toContain('checkpointEvery');
    refused.dispose();
    const otherReward = makeTrainer({ ...tiny, steps: 2 }, outDir, {
      settings: { ...settings, reward: 'runs/rm2' },
    });
    await expect(otherReward.trainer.resume()).rejects.toThrow('reward: saved "runs/rm", now "runs/rm2"');
    otherReward.dispose();

    const notes: string[] = [];
    const forced = makeTrainer(changed, outDir, {
      settings,
      forceResume: true,
      onNote: (m) => notes.push(m),
    });
    expect(await forced.trainer.resume()).toBe(1);
    expect(notes.join('\n')).toMatch(
      /warning: resuming with settings that differ[\s\S]*seed: saved 7, now 8/,
    );
    await forced.trainer.train();
    forced.dispose();
    const manifest = JSON.parse(readFileSync(path.join(outDir, 'quorum.json'), 'utf8')) as {
      training: {
        forcedResumes: { step: number; differences: { setting: string }[] }[];
        ppo: { seed: number };
      };
    };
    expect(manifest.training.ppo.seed).toBe(8);
    expect(manifest.training.forcedResumes).toEqual([
      {
        step: 1,
        differences: [
          { setting: 'steps', saved: 2, now: 3 },
          { setting: 'seed', saved: 7, now: 8 },
          { setting: 'lr', saved: 1e-3, now: 1e-4 },
        ],
      },
    ]);
  });

  it('cuts metrics.jsonl back to the checkpoint, atomically, dropping a half-written line', async () => {
    const outDir = path.join(dir, 'metrics-cut');
    const run = makeTrainer({ ...tiny, checkpointEvery: 2 }, outDir);
    await run.trainer.train({ stopAtStep: 3 }); // checkpoints at 2 and 3
    run.dispose();
    // As if killed during step 4's line, after step 3's checkpoint was lost.
    rmSync(path.join(outDir, 'train-state', 'step-00000003'), { recursive: true });
    appendFileSync(path.join(outDir, 'metrics.jsonl'), '{"step": 4, "rew');
    const again = makeTrainer({ ...tiny, checkpointEvery: 2 }, outDir);
    expect(await again.trainer.resume()).toBe(2);
    again.dispose();
    const steps = readFileSync(path.join(outDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as PpoStepLog).step);
    expect(steps).toEqual([1, 2]);
    expect(readdirSync(outDir).filter((f) => f.startsWith('.tmp'))).toEqual([]);
  });

  it('checkpoints a few times per run when checkpointEvery is unset: min(25, ⌈steps / 4⌉)', () => {
    expect([1, 4, 30, 100, 200].map(defaultPpoCheckpointEvery)).toEqual([1, 1, 8, 25, 25]);
    const run = makeTrainer({ ...tiny, steps: 4 });
    expect(run.trainer.checkpointEvery).toBe(1); // the smoke preset's 4 steps used to save only at the end
    run.dispose();
  });

  it('stops cleanly on abort after saving, and writes the final policy when done', async () => {
    const outDir = path.join(dir, 'abort');
    const controller = new AbortController();
    const run = makeTrainer({ ...tiny, steps: 2 }, outDir, {
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    const summary = await run.trainer.train();
    expect(summary).toMatchObject({ steps: 1, aborted: true });
    expect(existsSync(path.join(outDir, 'train-state', 'step-00000001'))).toBe(true);
    expect(existsSync(path.join(outDir, 'quorum.json'))).toBe(false);
    run.dispose();

    const rest = makeTrainer({ ...tiny, steps: 2 }, outDir);
    await rest.trainer.resume();
    expect((await rest.trainer.train()).steps).toBe(2);
    expect(existsSync(path.join(outDir, 'quorum.json'))).toBe(true);
    expect(existsSync(path.join(outDir, 'value-head.safetensors'))).toBe(true);
    rest.dispose();
  });

  it('raises a reward it can learn: a policy answering "yes" or "no" learns to say "yes"', async () => {
    // SFT the tiny model to answer every prompt with "yes" or "no" (half each), then reward answers
    // starting with "y" (the tiny model spells them y·es·o…, so the first letter is what it decides).
    const params = initGpt(gptConfig, new Rng(3));
    const examples = prompts.flatMap((p) =>
      ['yes', 'no'].map((answer) => {
        const e = encodePromptResponse(tokenizer, p, answer, { maxLength: gptConfig.contextLength });
        return {
          ids: Array.from(e.ids),
          lossMask: Array.from(e.ids, (_, t) => (t >= e.promptLength ? 1 : 0)),
        };
      }),
    );
    const batch = makeSftBatch(examples, tokenizer.padId);
    const named = namedParameters(params);
    const sft = new AdamW(named, { lr: 1e-2 });
    for (let i = 0; i < 60; i++) {
      const { grads } = valueAndGrads(() => sftLoss(params, gptConfig, batch), named);
      sft.applyGradients(grads);
      tf.dispose(Object.values(grads));
    }
    tf.dispose([batch.ids, batch.mask, batch.lossMask]);
    sft.dispose();

    const saysYes: number[] = [];
    const trainer = new PpoTrainer({
      policy: { config: gptConfig, params, tokenizer },
      reward: { score: (_p, answers) => [answers.map((a) => (a.startsWith('y') ? 1 : 0))], rule: meanRule() },
      prompts,
      ppo: resolvePpoConfig({ ...tiny, steps: 10, rolloutBatch: 16, stepBatch: 8, lr: 3e-3 }),
      onProgress: (l) => saysYes.push(l.reward),
    });
    await trainer.train();
    trainer.dispose();
    disposeGpt(params);
    const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(saysYes[0]).toBeLessThan(0.8); // the SFT policy says both
    expect(avg(saysYes.slice(-3))).toBeGreaterThan(0.95);
  });

  it('reads log-probs and entropy at the sampling temperature', () => {
    const entropyAt = (temperature: number): number => {
      const run = makeTrainer({ ...tiny, temperature, topP: 1 });
      const log = run.trainer.trainStep();
      run.dispose();
      return log.entropy;
    };
    // An untrained model is near uniform over 4,096 ids: ln 4096 = 8.3 nats at T = 1; sharper below 1.
    const [cold, warm] = [entropyAt(0.05), entropyAt(1)];
    expect(warm).toBeGreaterThan(7);
    expect(cold).toBeLessThan(warm - 1);
  });

  it('rejects a reward function that returns the wrong shape or non-finite rewards', () => {
    const params = initGpt(gptConfig, new Rng(3));
    for (const score of [() => [], () => [[1]], () => [Array(4).fill(Number.NaN)]]) {
      const trainer = new PpoTrainer({
        policy: { config: gptConfig, params, tokenizer },
        reward: { score, rule: meanRule() },
        prompts,
        ppo: resolvePpoConfig(tiny),
      });
      expect(() => trainer.trainStep()).toThrow(/reward\.score|finite/);
      trainer.dispose();
    }
    disposeGpt(params);
  });

  it('rejects a maxNewTokens that leaves no room for the prompt', () => {
    const params = initGpt(gptConfig, new Rng(3));
    expect(
      () =>
        new PpoTrainer({
          policy: { config: gptConfig, params, tokenizer },
          reward: { ensemble, tokenizer, rule: meanRule() },
          prompts,
          ppo: resolvePpoConfig({ maxNewTokens: 60 }),
        }),
    ).toThrow(ConfigError);
    disposeGpt(params);
  });
});

describe('PpoTrainer saves the policy with its own tokenizer', () => {
  it("Quorum's (vocab.json) and a Hugging Face one (tokenizer.json), each loading back with the same id", async () => {
    const stories = fileURLToPath(new URL('../../../data/fixtures/stories260K-tokenizer/', import.meta.url));
    const hf = await loadTokenizer(stories, { onWarning: () => {} });
    const constantReward = { score: (p: readonly Prompt[]) => [p.map(() => 1)], rule: meanRule() };
    for (const [tok, kind, files] of [
      [tokenizer, Tokenizer, ['vocab.json']],
      [hf, HfTokenizer, ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']],
    ] as const) {
      const config = { ...gptConfig, vocabSize: tok.vocabSize };
      const params = initGpt(config, new Rng(3));
      const outDir = path.join(dir, `saved-${tok.id}`);
      const trainer = new PpoTrainer({
        policy: { config, params, tokenizer: tok },
        reward: constantReward,
        prompts,
        ppo: resolvePpoConfig({ ...tiny, steps: 1 }),
        outDir,
      });
      await trainer.train();
      trainer.dispose();
      disposeGpt(params);
      const policy = await loadPolicy(outDir);
      expect(policy.tokenizerFiles).toEqual(files);
      expect(policy.manifest.vocab).toEqual({ id: tok.id, size: tok.vocabSize });
      const back = await loadTokenizer(outDir, {
        vocabSize: policy.manifest.vocab.size,
        onWarning: () => {},
      });
      expect(back).toBeInstanceOf(kind);
      expect(back.id).toBe(tok.id);
      expect([...back.encode('Once upon a time')]).toEqual([...tok.encode('Once upon a time')]);
      disposeGpt(policy.params);
    }
  });
});

describe('ppo config', () => {
  it("defaults to the paper's Table 4 and Table 6 values, rollouts from the whole distribution (top-p 1, as TRL)", () => {
    const c = resolvePpoConfig({});
    expect(c).toMatchObject({
      rolloutBatch: 64,
      stepBatch: 32,
      lr: 1e-5,
      ppoEpochs: 2,
      vfCoef: 0.1,
      warmupSteps: 5,
      temperature: 0.7,
      topP: 1,
      gamma: 1,
      lam: 0.95,
      klCoef: 0.02,
    });
  });

  it('names an unknown option and the valid ones', () => {
    expect(() => resolvePpoConfig({ kl_coef: 1 })).toThrow(/kl_coef/);
  });
});
