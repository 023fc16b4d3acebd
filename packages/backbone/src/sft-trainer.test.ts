import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { builtinBackendRegistry, ConfigError, DataError, initCompute, Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGpt, encodeGpt, loadGpt, saveGpt } from './checkpoint.js';
import { type GptConfig, resolveGptConfig } from './config.js';
import { disposeGpt, gptHidden, initGpt, namedParameters, tokenLogProbs } from './model.js';
import { defaultSftCheckpointEvery, resolveSftConfig } from './sft-config.js';
import { makeSftBatch, type SftExample, type SftProgress, SftTrainer, sftLoss } from './sft-trainer.js';

let dir: string;
beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  dir = await mkdtemp(path.join(tmpdir(), 'quorum-backbone-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config: GptConfig = resolveGptConfig({
  vocabSize: 32,
  contextLength: 16,
  dModel: 16,
  nLayers: 2,
  nHeads: 2,
});

/** "prompt" tokens 1..3 then a response that counts up from a start token: easy to learn. */
function examples(n: number, seed: number): SftExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const start = 4 + rng.int(10);
    const len = 6 + rng.int(6);
    const ids = [1, 2, 3, ...Array.from({ length: len }, (_, i) => start + i)];
    return { ids, lossMask: ids.map((_, i) => (i >= 3 ? 1 : 0)) };
  });
}

const paramValues = (params: ReturnType<typeof initGpt>): number[] =>
  Object.values(namedParameters(params)).flatMap((v) => Array.from(v.dataSync()));

describe('sftLoss', () => {
  it('is the mean −log p over response targets only', () => {
    const params = initGpt(config, new Rng(1));
    const batch = makeSftBatch(examples(3, 2));
    expect(batch.ids.shape[1]).toBe(Math.max(...examples(3, 2).map((e) => e.ids.length)));
    tf.tidy(() => {
      const loss = sftLoss(params, config, batch).dataSync()[0] as number;
      const lp = tokenLogProbs(params, config, batch.ids, batch.mask); // [B, T-1]
      const w = tf.slice(tf.mul(batch.lossMask, batch.mask), [0, 1], [-1, -1]);
      const manual = -(tf.sum(tf.mul(lp, w)).dataSync()[0] as number) / batch.targets;
      expect(loss).toBeCloseTo(manual, 5);
      expect(loss).toBeGreaterThan(Math.log(32) - 0.5);
    });
    tf.dispose([batch.ids, batch.mask, batch.lossMask]);
    disposeGpt(params);
  });
});

describe('SftTrainer', () => {
  it('lowers the loss on a small repeated set, reports progress and leaks nothing per step', async () => {
    const params = initGpt(config, new Rng(3));
    const progress: SftProgress[] = [];
    const trainer = new SftTrainer({
      config,
      params,
      sft: resolveSftConfig({
        maxSteps: 40,
        batchSize: 8,
        lr: 1e-2,
        evalEvery: 20,
        logEvery: 10,
        warmupRatio: 0.1,
      }),
      train: examples(8, 4),
      eval: examples(8, 4),
      onProgress: (p) => progress.push(p),
    });
    const first = trainer.evaluate() as number;
    const before = tf.memory().numTensors;
    trainer.trainStep();
    expect(tf.memory().numTensors).toBe(before);
    const summary = await trainer.train();
    expect(summary.steps).toBe(40);
    expect(progress.map((p) => p.step)).toEqual([10, 20, 30, 40]);
    expect(progress[1]?.evalLoss).toBeDefined();
    expect(progress[0]?.tokensPerSec).toBeGreaterThan(0);
    expect(summary.evalLoss as number).toBeLessThan(first * 0.5);
    expect(tf.memory().numTensors).toBe(before);
    trainer.dispose();
    disposeGpt(params);
  });

  it('accumulates gradients: 2 × 2 equals one batch of 4', () => {
    const data = examples(4, 5);
    const run = (batchSize: number, gradAccumSteps: number): number[] => {
      const params = initGpt(config, new Rng(6));
      const trainer = new SftTrainer({
        config,
        params,
        sft: resolveSftConfig({ maxSteps: 1, batchSize, gradAccumSteps, warmupRatio: 0 }),
        train: data,
      });
      trainer.trainStep();
      const out = paramValues(params);
      trainer.dispose();
      disposeGpt(params);
      return out;
    };
    const a = run(4, 1);
    const b = run(2, 2);
    const maxDiff = a.reduce((m, x, i) => Math.max(m, Math.abs(x - (b[i] as number))), 0);
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('resumes from a checkpoint to the same weights as an uninterrupted run', async () => {
    const sft = resolveSftConfig({ maxSteps: 6, batchSize: 3, checkpointEvery: 3, evalEvery: 0 });
    const data = examples(5, 7);
    const full = initGpt(config, new Rng(8));
    const a = new SftTrainer({ config, params: full, sft, train: data });
    await a.train();

    const out = path.join(dir, 'resume');
    const half = initGpt(config, new Rng(8));
    const b = new SftTrainer({ config, params: half, sft, train: data, outDir: out });
    await b.train({ stopAtStep: 3 });
    disposeGpt(half);
    b.dispose();

    const fresh = initGpt(config, new Rng(99));
    const c = new SftTrainer({ config, params: fresh, sft, train: data, outDir: out });
    expect(await c.resume()).toBe(3);
    expect(c.step).toBe(3);
    await c.train();
    expect(paramValues(fresh)).toEqual(paramValues(full));
    for (const t of [a, c]) t.dispose();
    disposeGpt(full);
    disposeGpt(fresh);
  });

  it('refuses to resume with another seed, lr or maxSteps (listing saved and now), unless forceResume', async () => {
    const data = examples(5, 7);
    const out = path.join(dir, 'resume-settings');
    const sft = resolveSftConfig({ maxSteps: 6, batchSize: 3, checkpointEvery: 3, evalEvery: 0, seed: 1 });
    const params = initGpt(config, new Rng(8));
    const settings = { data: 'a.jsonl' };
    const first = new SftTrainer({ config, params, sft, train: data, eval: data, outDir: out, settings });
    first.evaluateInitial();
    await first.train({ stopAtStep: 3 });
    first.dispose();

    const changed = resolveSftConfig({
      ...sft,
      seed: 2,
      lr: 3e-4,
      maxSteps: 9,
      logEvery: 1,
      checkpointEvery: 1,
    });
    const make = (
      over: { forceResume?: boolean; settings?: Record<string, unknown> } = {},
      notes: string[] = [],
    ) =>
      new SftTrainer({
        config,
        params,
        sft: changed,
        train: data,
        outDir: out,
        settings,
        onNote: (m) => notes.push(m),
        ...over,
      });
    const refused = make();
    const error = await refused.resume().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('maxSteps: saved 6, now 9');
    expect(message).toContain('lr: saved 0.001, now 0.0003');
    expect(message).toContain('seed: saved 1, now 2');
    // How often it logs and saves may change.
    expect(message).not.toMatch(/logEvery|checkpointEvery/);
    expect((error as ConfigError).hint).toContain('--force-resume');
    refused.dispose();
    const otherData = make({ settings: { data: 'b.jsonl' } });
    const sameConfig = new SftTrainer({
      config,
      params,
      sft,
      train: data,
      outDir: out,
      settings: { data: 'b.jsonl' },
    });
    await expect(sameConfig.resume()).rejects.toThrow('data: saved "a.jsonl", now "b.jsonl"');
    for (const t of [otherData, sameConfig]) t.dispose();

    const notes: string[] = [];
    const forced = make({ forceResume: true }, notes);
    expect(await forced.resume()).toBe(3);
    expect(notes.join('\n')).toMatch(
      /warning: resuming with settings that differ[\s\S]*seed: saved 1, now 2/,
    );
    expect(forced.forcedResumes).toEqual([
      {
        step: 3,
        differences: [
          { setting: 'maxSteps', saved: 6, now: 9 },
          { setting: 'lr', saved: 1e-3, now: 3e-4 },
          { setting: 'seed', saved: 1, now: 2 },
        ],
      },
    ]);
    // The initial eval loss survives the resume.
    expect(forced.initialEvalLoss).toBeGreaterThan(0);
    await forced.train();
    forced.dispose();
    const again = make();
    expect(await again.resume()).toBe(9); // the forced settings are the saved ones now
    expect(again.forcedResumes).toHaveLength(1);
    again.dispose();
    disposeGpt(params);
  });

  it('checkpoints a few times per run when checkpointEvery is unset: min(100, ⌈maxSteps / 4⌉)', async () => {
    expect([1, 24, 60, 300, 2000].map(defaultSftCheckpointEvery)).toEqual([1, 6, 15, 75, 100]);
    const params = initGpt(config, new Rng(8));
    const sft = resolveSftConfig({ maxSteps: 8, batchSize: 3, evalEvery: 0, logEvery: 1 });
    const out = path.join(dir, 'interval');
    const t = new SftTrainer({
      config,
      params,
      sft,
      train: examples(5, 7),
      outDir: out,
      onProgress: (p) => {
        if (p.step === 7) throw new Error('killed');
      },
    });
    expect(t.checkpointEvery).toBe(2);
    await expect(t.train()).rejects.toThrow('killed');
    t.dispose();
    const r = new SftTrainer({ config, params, sft, train: examples(5, 7), outDir: out });
    expect(await r.resume()).toBe(6);
    r.dispose();
    disposeGpt(params);
  });

  it('rejects bad examples naming the row', () => {
    const params = initGpt(config, new Rng(1));
    const sft = resolveSftConfig({});
    const make = (train: SftExample[]) => () => new SftTrainer({ config, params, sft, train });
    expect(make([{ ids: [1, 2], lossMask: [0] }])).toThrow(DataError);
    expect(make([...examples(2, 1), { ids: Array(20).fill(1), lossMask: Array(20).fill(1) }])).toThrow(
      'field "train[2]": sequence of length 20 exceeds context 16',
    );
    expect(make([{ ids: [1, 40], lossMask: [0, 1] }])).toThrow('token id 40 is outside [0, 32)');
    expect(make([{ ids: [1, 2], lossMask: [1, 0] }])).toThrow(/no trained target/);
    expect(() => resolveSftConfig({ lr: -1 })).toThrow(/sft\.lr/);
    disposeGpt(params);
  });
});

describe('SftTrainer with objective lm', () => {
  /** Packed blocks of a counting language (as @quorum/data's packDocuments: every position ≥ 1 a target). */
  const blocks = (n: number): SftExample[] =>
    Array.from({ length: n }, (_, b) => {
      const ids = Array.from({ length: 12 }, (_, i) => 4 + ((b + i) % 20));
      return { ids, lossMask: ids.map((_, i) => (i === 0 ? 0 : 1)) };
    });

  it('learns every token of packed blocks and leaves the resume settings of sft runs as they were', async () => {
    const params = initGpt(config, new Rng(11));
    const sft = resolveSftConfig({ objective: 'lm', maxSteps: 30, batchSize: 8, lr: 1e-2, evalEvery: 0 });
    const trainer = new SftTrainer({ config, params, sft, train: blocks(16), eval: blocks(4) });
    const first = trainer.evaluate() as number;
    const summary = await trainer.train();
    expect(summary.evalLoss as number).toBeLessThan(first * 0.5);
    trainer.dispose();
    disposeGpt(params);
    expect('objective' in resolveSftConfig({})).toBe(false);
  });

  it('refuses a block with a position that is not a target, naming the row', () => {
    const params = initGpt(config, new Rng(1));
    const sft = resolveSftConfig({ objective: 'lm' });
    const make = (train: SftExample[]) => () => new SftTrainer({ config, params, sft, train });
    expect(make(examples(2, 1))).toThrow(/train\[0\].*position 1 is not a target/);
    expect(make([{ ids: [5], lossMask: [0] }])).toThrow('a block of 1 token(s) has no target');
    expect(make(blocks(2))).not.toThrow();
    expect(() => resolveSftConfig({ objective: 'mlm' })).toThrow(/sft\.objective/);
    disposeGpt(params);
  });
});

describe('backbone files', () => {
  it('round-trips parameters and config through safetensors', async () => {
    const ropeConfig = resolveGptConfig({ ...config, positional: 'rope', tieEmbeddings: false });
    const params = initGpt(ropeConfig, new Rng(10));
    const file = path.join(dir, 'backbone.safetensors');
    await saveGpt(file, ropeConfig, params);
    const loaded = await loadGpt(file);
    expect(loaded.config).toEqual(ropeConfig);
    expect(paramValues(loaded.params)).toEqual(paramValues(params));
    const decoded = decodeGpt(await encodeGpt(ropeConfig, params));
    tf.tidy(() => {
      const ids = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
      const mask = tf.ones([1, 3]) as tf.Tensor2D;
      const diff = tf.max(
        tf.abs(
          tf.sub(gptHidden(params, ropeConfig, ids, mask), gptHidden(decoded.params, ropeConfig, ids, mask)),
        ),
      );
      expect(diff.dataSync()[0]).toBe(0);
    });
    for (const p of [params, loaded.params, decoded.params]) disposeGpt(p);
  });
});
