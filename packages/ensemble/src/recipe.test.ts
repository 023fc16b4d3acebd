// The reward-model training recipe (issue 17): a time budget sized from the measured step time, early
// stopping that keeps the best weights, ODIN's length head, the diversity options, on a tiny backbone.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type GptConfig, gptPreset } from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, decodeSafetensors, initCompute, Rng } from '@quorum/core';
import { datasets, type PreferencePair, projectTokenizer, type Tokenizer } from '@quorum/data';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TrainableEnsemble } from './architecture.js';
import { encodePairs, tokenBatch } from './batches.js';
import { loadEnsemble, saveEnsemble } from './checkpoint.js';
import { evaluatePairs } from './evaluate.js';
import { builtinArchitectureRegistry } from './module.js';
import { parseDuration, type RewardTrainConfigInput, resolveRewardTrainConfig } from './reward-config.js';
import {
  holdOut,
  memberSubsets,
  stepsForBudget,
  trainRewardEnsemble,
  validationLoss,
} from './reward-trainer.js';

let tokenizer: Tokenizer;
let gptConfig: GptConfig;
let real: PreferencePair[];
const easy: PreferencePair[] = Array.from({ length: 24 }, (_, i) => ({
  id: `p${i}`,
  prompt: { instruction: `Name colour ${i}.`, input: '' },
  chosen: `Colour ${i} is blue.`,
  rejected: 'No.',
}));

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  tokenizer = projectTokenizer();
  real = (await datasets.alpacaEval()).pairs({ split: 'train' }).slice(0, 32);
  gptConfig = gptPreset('nano', {
    vocabSize: tokenizer.vocabSize,
    dModel: 16,
    nLayers: 1,
    nHeads: 2,
    contextLength: 32,
  });
});

const build = (arch: string, k: number, options: Record<string, unknown> = {}): TrainableEnsemble =>
  builtinArchitectureRegistry()
    .create([arch, options])
    .build({ gptConfig, members: k, rng: new Rng(1) });

const config = (over: RewardTrainConfigInput = {}) =>
  resolveRewardTrainConfig({ batchSize: 4, gradAccum: 1, maxLength: 32, logEvery: 1000, seed: 1, ...over });

/** The ensemble with a fake clock that advances `cost(call)` ms on every training forward. */
function timed(ensemble: TrainableEnsemble, clock: { t: number }, cost: (call: number) => number) {
  let calls = 0;
  const tick = (): void => {
    clock.t += cost(++calls);
  };
  return {
    ...ensemble,
    phases: () =>
      ensemble.phases().map((p) => ({
        ...p,
        rewards: (b: Parameters<typeof p.rewards>[0], r: Parameters<typeof p.rewards>[1]) => {
          tick();
          return p.rewards(b, r);
        },
      })),
  };
}

describe('time budget', () => {
  it('parses 90s, 30m, 1h and plain seconds; rejects the rest by name', () => {
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('30m')).toBe(1800);
    expect(parseDuration('1h')).toBe(3600);
    expect(parseDuration('1.5h')).toBe(5400);
    expect(parseDuration('45')).toBe(45);
    expect(() => parseDuration('soon', '--time-budget')).toThrow(ConfigError);
    expect(() => parseDuration('0m')).toThrow(/90s, 30m or 1h/);
    expect(stepsForBudget(1000, 30)).toBe(33);
    expect(stepsForBudget(1000, 30, 10)).toBe(10);
    expect(stepsForBudget(10, 30)).toBe(1);
  });

  it('sizes the steps and the cosine schedule from the measured step time (injected clock)', async () => {
    const clock = { t: 0 };
    const ensemble = build('single', 1);
    const lrs: number[] = [];
    try {
      const result = await trainRewardEnsemble({
        ensemble: timed(ensemble, clock, () => 50),
        tokenizer,
        pairs: easy,
        config: config({ timeBudget: 2, epochs: 1 }),
        clock: () => clock.t,
        onProgress: (p) => lrs.push(p.lr),
      });
      // Two probe steps (100 ms), then ⌊1900 / 50⌋ = 38 steps: 6+ epochs of the 24 pairs, not the 1 asked.
      expect(result.phases.members).toMatchObject({ plannedSteps: 38, steps: 38, secondsPerStep: 0.05 });
      expect(result.steps.members).toBe(38);
      expect(clock.t).toBe(2000);
      // Warmup ⌈0.03 · 38⌉ = 2 steps, then cosine to 0 at step 38.
      expect(lrs[1]).toBeCloseTo(3e-4, 8);
      expect(lrs[lrs.length - 1]).toBeLessThan(1e-5);
    } finally {
      ensemble.dispose();
    }
  });

  it('re-sizes when steps get slower and stops at the budget, within 10%', async () => {
    const clock = { t: 0 };
    const ensemble = build('single', 1);
    try {
      const result = await trainRewardEnsemble({
        ensemble: timed(ensemble, clock, (call) => (call <= 12 ? 50 : 100)),
        tokenizer,
        pairs: easy,
        config: config({ timeBudget: 2 }),
        clock: () => clock.t,
      });
      const phase = result.phases.members;
      expect(phase?.steps).toBeLessThan(38);
      expect(clock.t).toBeGreaterThanOrEqual(0.9 * 2000);
      expect(clock.t).toBeLessThanOrEqual(1.1 * 2000);
    } finally {
      ensemble.dispose();
    }
  });

  it('a resumed budgeted run keeps its sized schedule and the budget left, with no new probe', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'quorum-budget-resume-'));
    const clock = { t: 0 };
    const c = config({ timeBudget: 2, checkpointEvery: 5 });
    const stop = new AbortController();
    const e1 = build('single', 1);
    try {
      const first = await trainRewardEnsemble({
        ensemble: timed(e1, clock, () => 50),
        tokenizer,
        pairs: easy,
        config: c,
        out,
        clock: () => clock.t,
        signal: stop.signal,
        onProgress: (p) => {
          if (p.step === 10) stop.abort();
        },
      });
      expect(first.stoppedEarly).toBe(true);
    } finally {
      e1.dispose();
    }
    // The state of step 10 recorded 38 sized steps and 0.6 s used; a fresh process clock starts at 0.
    const resumedClock = { t: 0 };
    const e2 = build('single', 1);
    try {
      const second = await trainRewardEnsemble({
        ensemble: timed(e2, resumedClock, () => 50),
        tokenizer,
        pairs: easy,
        config: c,
        out,
        resume: true,
        clock: () => resumedClock.t,
      });
      expect(second.phases.members).toMatchObject({ plannedSteps: 38, steps: 38 });
      expect(second.phases.members?.secondsPerStep).toBeUndefined(); // not probed again
      expect(resumedClock.t).toBe(28 * 50); // the 1.4 s of budget left
    } finally {
      e2.dispose();
    }
  });

  it('honours a real 2.5 s budget within 10% of wall time', async () => {
    const ensemble = build('linear-heads', 2);
    try {
      const began = Date.now();
      const result = await trainRewardEnsemble({
        ensemble,
        tokenizer,
        pairs: easy,
        config: config({ timeBudget: 2.5 }),
      });
      const seconds = (Date.now() - began) / 1000;
      expect(result.steps.members).toBeGreaterThan(5);
      expect(seconds).toBeGreaterThanOrEqual(0.9 * 2.5);
      expect(seconds).toBeLessThanOrEqual(1.1 * 2.5);
    } finally {
      ensemble.dispose();
    }
  });
});

describe('early stopping', () => {
  it('holds out a seeded slice, stops on patience and keeps the best weights, not the last', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'quorum-es-'));
    const c = config({
      lr: 3e-2,
      maxSteps: 40,
      earlyStopping: { every: 1, patience: 2, fraction: 0.25 },
    });
    const ensemble = build('single', 1);
    try {
      const result = await trainRewardEnsemble({ ensemble, tokenizer, pairs: real, config: c, out });
      const phase = result.phases.members;
      expect(result.validationPairs).toBe(8);
      expect(phase?.stoppedBy).toBe('patience');
      expect(phase?.steps).toBeLessThan(40);
      expect(phase?.bestStep).toBeLessThan(phase?.steps as number);
      const logged = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('validationLoss'))
        .map((l) => (JSON.parse(l) as { validationLoss: number }).validationLoss);
      expect(Math.min(...logged)).toBeCloseTo(phase?.bestValidationLoss as number, 6);
      // The ensemble now holds the best step's weights: its held-out loss is the best one.
      const { validation } = holdOut(encodePairs(tokenizer, real, 32).encoded, c);
      const now = validationLoss(ensemble.phases()[0] as never, validation, tokenizer.padId, 4);
      expect(now).toBeCloseTo(phase?.bestValidationLoss as number, 5);
    } finally {
      ensemble.dispose();
    }
  });
});

describe('ODIN', () => {
  it('trains a length head beside each member; only the quality head is saved and scores', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'quorum-odin-'));
    const ensemble = build('linear-heads', 2);
    const before = tf.memory().numTensors;
    try {
      const result = await trainRewardEnsemble({
        ensemble,
        tokenizer,
        pairs: real,
        config: config({ maxSteps: 4, odin: { lengthWeight: 1, orthWeight: 1 } }),
        out,
      });
      expect(Number.isFinite(result.finalLoss.members)).toBe(true);
      expect(tf.memory().numTensors).toBe(before); // length heads and every step's tensors disposed
      const states = readdirSync(path.join(out, 'train-state')).filter((d) => d.startsWith('step-'));
      const state = decodeSafetensors(
        readFileSync(path.join(out, 'train-state', states.sort().at(-1) as string, 'state.safetensors')),
      );
      expect(Object.keys(state.tensors)).toContain('model.odin.length.w');
      const dir = path.join(out, 'model');
      await saveEnsemble(dir, ensemble, { architectureSource: '@quorum/ensemble', tokenizer });
      const heads = decodeSafetensors(readFileSync(path.join(dir, 'heads.safetensors')));
      expect(Object.keys(heads.tensors).sort()).toEqual(['heads.b', 'heads.w']);
      const { ensemble: loaded } = await loadEnsemble(dir, builtinArchitectureRegistry());
      const batch = tokenBatch([encodePairs(tokenizer, real.slice(0, 1), 32).encoded[0]?.chosen ?? []], 0);
      const a = ensemble.score(batch);
      const b = loaded.score(batch);
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      tf.dispose([a, b, batch.ids, batch.mask]);
      loaded.dispose();
    } finally {
      ensemble.dispose();
    }
  });

  it('trains with independent members (one per phase) and lora (member-major adapter features)', async () => {
    for (const [arch, options] of [
      ['independent', {}],
      ['lora', { rank: 2 }],
    ] as const) {
      const e = build(arch, 2, options);
      try {
        const result = await trainRewardEnsemble({
          ensemble: e,
          tokenizer,
          pairs: real,
          config: config({ maxSteps: 1, odin: { lengthWeight: 2 }, diversity: 0.5 }),
        });
        expect(Object.values(result.finalLoss).every(Number.isFinite)).toBe(true);
        expect(Object.keys(result.phases)).toEqual(e.phases().map((p) => p.name));
      } finally {
        e.dispose();
      }
    }
  });

  it('names the phase when an architecture does not expose its heads’ input', async () => {
    const ensemble = build('single', 1);
    const bare = { ...ensemble, phases: () => ensemble.phases().map((p) => ({ ...p, features: undefined })) };
    try {
      await expect(
        trainRewardEnsemble({ ensemble: bare, tokenizer, pairs: easy, config: config({ odin: {} }) }),
      ).rejects.toThrow(/phase "members" of single/);
    } finally {
      ensemble.dispose();
    }
  });
});

describe('diverse members', () => {
  it('memberSubsets splits a phase’s pairs into k disjoint seeded subsets of equal size', () => {
    const indices = Array.from({ length: 10 }, (_, i) => 100 + i);
    const owners = memberSubsets(indices, 3, new Rng(4));
    expect([...owners.keys()].sort()).toEqual(indices);
    const sizes = [0, 1, 2].map((m) => [...owners.values()].filter((o) => o === m).length);
    expect(sizes.sort()).toEqual([3, 3, 4]);
    expect(memberSubsets(indices, 3, new Rng(4))).toEqual(owners);
  });

  it('lora with memberSubsets trains each adapter on its own pairs (different weights than without)', async () => {
    const adapters = async (memberSubsetsOn: boolean): Promise<number[]> => {
      const e = build('lora', 2, { rank: 2 });
      try {
        await trainRewardEnsemble({
          ensemble: e,
          tokenizer,
          pairs: real,
          config: config({ maxSteps: 2, memberSubsets: memberSubsetsOn }),
        });
        const files = e.tensorFiles()['adapters.safetensors'] as Record<string, tf.Variable>;
        return Array.from((files['heads.w'] as tf.Variable).dataSync());
      } finally {
        e.dispose();
      }
    };
    expect(await adapters(true)).not.toEqual(await adapters(false));
  });

  it('the agreement penalty lowers the member correlation (linear-heads, fixed seed)', async () => {
    const correlation = async (diversity: number | undefined): Promise<number> => {
      const e = build('linear-heads', 3);
      try {
        await trainRewardEnsemble({
          ensemble: e,
          tokenizer,
          pairs: real,
          config: config({ maxSteps: 12, lr: 3e-3, bootstrap: false, diversity }),
        });
        return evaluatePairs(e, tokenizer, real, { maxLength: 32 }).memberCorrelation;
      } finally {
        e.dispose();
      }
    };
    const off = await correlation(undefined);
    const on = await correlation(50);
    expect(off).toBeGreaterThan(0.9); // without it, heads on one trunk agree almost perfectly
    expect(on).toBeLessThan(off - 0.5);
  });
});
