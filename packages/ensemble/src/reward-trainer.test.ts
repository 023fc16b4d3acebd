// The reward trainer's resume rules (issue 16): settings checked against the saved state, metrics.jsonl cut
// back to the state's step, a default checkpoint interval that scales with the run, and data errors that say
// what became of the pairs.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type GptConfig, gptPreset } from '@quorum/backbone';
import {
  builtinBackendRegistry,
  CheckpointStore,
  ConfigError,
  DataError,
  initCompute,
  Rng,
} from '@quorum/core';
import { type PreferencePair, projectTokenizer, type Tokenizer } from '@quorum/data';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TrainableEnsemble } from './architecture.js';
import { builtinArchitectureRegistry } from './module.js';
import {
  defaultCheckpointEvery,
  type RewardTrainConfigInput,
  resolveRewardTrainConfig,
} from './reward-config.js';
import { type RewardTrainOptions, trainRewardEnsemble } from './reward-trainer.js';

let tokenizer: Tokenizer;
let gptConfig: GptConfig;
const pairs: PreferencePair[] = Array.from({ length: 24 }, (_, i) => ({
  id: `p${i}`,
  prompt: { instruction: `Name colour ${i}.`, input: '' },
  chosen: `Colour ${i} is blue.`,
  rejected: 'No.',
}));

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  tokenizer = projectTokenizer();
  gptConfig = gptPreset('nano', {
    vocabSize: tokenizer.vocabSize,
    dModel: 16,
    nLayers: 1,
    nHeads: 2,
    contextLength: 32,
  });
});

const build = (): TrainableEnsemble =>
  builtinArchitectureRegistry()
    .create('single')
    .build({ gptConfig, members: 1, rng: new Rng(1) });

const config = (over: RewardTrainConfigInput = {}) =>
  resolveRewardTrainConfig({
    batchSize: 4,
    gradAccum: 1,
    maxSteps: 4,
    maxLength: 32,
    logEvery: 1,
    seed: 1,
    ...over,
  });

async function train(
  options: Partial<RewardTrainOptions>,
): Promise<Awaited<ReturnType<typeof trainRewardEnsemble>>> {
  const ensemble = build();
  try {
    return await trainRewardEnsemble({ ensemble, tokenizer, pairs, config: config(), ...options });
  } finally {
    ensemble.dispose();
  }
}

const metricSteps = (dir: string): number[] =>
  readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { globalStep: number }).globalStep);

/** Drops the newest state, as if the run had been killed before writing it. */
function killBeforeLastState(dir: string): void {
  const states = readdirSync(path.join(dir, 'train-state'))
    .filter((d) => d.startsWith('step-'))
    .sort();
  rmSync(path.join(dir, 'train-state', states[states.length - 1] as string), { recursive: true });
}

describe('trainRewardEnsemble resume', () => {
  it('refuses a resume whose seed, lr or maxSteps differ, listing saved and current values; forceResume goes on and records them', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'quorum-rt-settings-'));
    const settings = { data: 'prefs.jsonl', init: 'scratch' };
    await train({ out, config: config({ checkpointEvery: 1 }), settings });
    killBeforeLastState(out);
    const before = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8');

    const changed = {
      out,
      resume: true,
      config: config({ checkpointEvery: 1, seed: 2, lr: 1e-3, maxSteps: 6 }),
    };
    const refused = train({ ...changed, settings });
    await expect(refused).rejects.toThrow(ConfigError);
    const error = (await refused.catch((e: unknown) => e)) as ConfigError;
    expect(error.message).toContain('seed: saved 1, now 2');
    expect(error.message).toContain('lr: saved 0.0003, now 0.001');
    expect(error.message).toContain('maxSteps: saved 4, now 6');
    expect(error.hint).toContain('--force-resume');
    // The run's data setting is compared too; logEvery and checkpointEvery are not.
    const otherData = train({
      out,
      resume: true,
      config: config({ logEvery: 2 }),
      settings: { ...settings, data: 'x.jsonl' },
    });
    await expect(otherData).rejects.toThrow('data: saved "prefs.jsonl", now "x.jsonl"');
    expect(readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')).toBe(before);

    const notes: string[] = [];
    const forced = await train({ ...changed, settings, forceResume: true, onNote: (m) => notes.push(m) });
    expect(notes.join('\n')).toMatch(
      /warning: resuming with settings that differ[\s\S]*seed: saved 1, now 2/,
    );
    expect(forced.forcedResumes).toEqual([
      {
        step: 3,
        differences: [
          { setting: 'maxSteps', saved: 4, now: 6 },
          { setting: 'lr', saved: 3e-4, now: 1e-3 },
          { setting: 'seed', saved: 1, now: 2 },
        ],
      },
    ]);
    const latest = await new CheckpointStore(path.join(out, 'train-state')).latest();
    expect(latest?.meta.forcedResumes).toEqual(forced.forcedResumes);
    // The forced settings are the saved ones now: resuming with them again needs no force.
    await expect(train({ ...changed, settings })).resolves.toMatchObject({ stoppedEarly: false });
  });

  it('cuts metrics.jsonl back to the state it resumes from, so no step is logged twice', async () => {
    const whole = mkdtempSync(path.join(tmpdir(), 'quorum-rt-whole-'));
    const killed = mkdtempSync(path.join(tmpdir(), 'quorum-rt-killed-'));
    await train({ out: whole, config: config({ checkpointEvery: 1 }) });
    await train({ out: killed, config: config({ checkpointEvery: 1 }) });
    killBeforeLastState(killed); // steps 1–4 logged, the newest state is step 3's
    expect(metricSteps(killed)).toEqual([1, 2, 3, 4]);
    await train({ out: killed, config: config({ checkpointEvery: 1 }), resume: true });
    expect(metricSteps(killed)).toEqual(metricSteps(whole));
    expect(metricSteps(killed)).toEqual([1, 2, 3, 4]);
    expect(readdirSync(killed).filter((f) => f.includes('tmp'))).toEqual([]);
  });

  it('saves a few states per run when checkpointEvery is not set: min(50, ⌈steps / 4⌉)', async () => {
    expect([1, 4, 24, 200, 1000].map(defaultCheckpointEvery)).toEqual([1, 1, 6, 50, 50]);
    const out = mkdtempSync(path.join(tmpdir(), 'quorum-rt-interval-'));
    // A run killed at step 7 of 8 (an exception stops it without a final save) can resume from step 6.
    const run = train({
      out,
      config: config({ maxSteps: 8, epochs: 2 }),
      onProgress: (p) => {
        if (p.step === 7) throw new Error('killed');
      },
    });
    await expect(run).rejects.toThrow('killed');
    const latest = await new CheckpointStore(path.join(out, 'train-state')).latest();
    expect(latest?.step).toBe(6);
  });
});

describe('trainRewardEnsemble data errors', () => {
  it('all ties, or every pair too long to keep, is a DataError saying how many and why (not a CheckpointError)', async () => {
    const ties = pairs.map((p) => ({ ...p, tie: true }));
    const tied = train({ pairs: ties });
    await expect(tied).rejects.toThrow(DataError);
    await expect(tied).rejects.toThrow('none of the 24 training pairs can be trained on (24 ties, 0 longer');
    await expect(train({ pairs: [] })).rejects.toThrow('no training pairs were given');
    const long = pairs.map((p) => ({ ...p, chosen: 'word '.repeat(200) }));
    const dropped = train({ pairs: long, truncation: 'drop' });
    await expect(dropped).rejects.toThrow('(0 ties, 24 longer than maxLength 32)');
    expect(existsSync('metrics.jsonl')).toBe(false);
  });
});
