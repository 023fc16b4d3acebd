// Built-in architectures on a real slice of the shipped AlpacaEval pairs, with a tiny backbone.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type GptConfig, gptPreset, paramCount } from '@quorum/backbone';
import {
  builtinBackendRegistry,
  CheckpointStore,
  decodeSafetensors,
  initCompute,
  NumericalError,
  Rng,
} from '@quorum/core';
import { datasets, type PreferencePair, projectTokenizer, type Tokenizer } from '@quorum/data';
import { adapterParamCount, resolveLoraConfig } from '@quorum/lora';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TrainableEnsemble } from './architecture.js';
import { tokenBatch } from './batches.js';
import { loadEnsemble, saveEnsemble } from './checkpoint.js';
import { evaluatePairs } from './evaluate.js';
import { builtinArchitectureRegistry } from './module.js';
import { resolveRewardTrainConfig } from './reward-config.js';
import { trainRewardEnsemble } from './reward-trainer.js';

let tokenizer: Tokenizer;
let train: PreferencePair[];
let config: GptConfig;

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  tokenizer = projectTokenizer();
  const data = await datasets.alpacaEval();
  train = data.pairs({ split: 'train' }).slice(0, 48);
  config = gptPreset('nano', {
    vocabSize: tokenizer.vocabSize,
    dModel: 32,
    nLayers: 2,
    nHeads: 2,
    contextLength: 64,
  });
});

const build = (arch: string, k: number, seed = 1): TrainableEnsemble =>
  builtinArchitectureRegistry()
    .create(arch)
    .build({ gptConfig: config, members: k, rng: new Rng(seed) });

const trainConfig = (over: Record<string, unknown> = {}) =>
  resolveRewardTrainConfig({
    batchSize: 8,
    gradAccum: 1,
    maxSteps: 4,
    maxLength: 64,
    lr: 1e-3,
    logEvery: 1,
    checkpointEvery: 2,
    ...over,
  });

describe('built-in architectures', () => {
  it("report the paper's parameter counts: M+L, k(M+L), M+kL, M+kL+kA", () => {
    const M = paramCount(config);
    const L = config.dModel + 1;
    const k = 3;
    const single = build('single', 1);
    const independent = build('independent', k);
    const heads = build('linear-heads', k);
    expect(single.paramCounts()).toMatchObject({ total: M + L, trainable: M + L, backbone: M, head: L });
    expect(independent.paramCounts().total).toBe(k * (M + L));
    expect(heads.paramCounts().total).toBe(M + k * L);
    const lora = builtinArchitectureRegistry()
      .create(['lora', { rank: 4 }])
      .build({ gptConfig: config, members: k, rng: new Rng(1) });
    const A = adapterParamCount(config, resolveLoraConfig({ rank: 4 }));
    // A per member: rank·(in + out) for q, k, v, o (D→D), fc (D→4D) and proj (4D→D) in every layer
    expect(A).toBe(config.nLayers * 4 * (4 * (2 * config.dModel) + 2 * (5 * config.dModel)));
    expect(lora.paramCounts()).toMatchObject({
      total: M + k * L + k * A,
      trainable: k * L + k * A,
      adapter: A,
    });
    const top = builtinArchitectureRegistry()
      .create(['lora', { rank: 4, layers: { top: 1 } }])
      .build({ gptConfig: config, members: k, rng: new Rng(1) });
    expect(top.paramCounts().adapter).toBe(A / config.nLayers);
    for (const e of [single, independent, heads, lora, top]) e.dispose();
  });

  it('score a real batch into [k, B] rewards without leaking tensors', () => {
    const before = tf.memory().numTensors;
    const e = build('linear-heads', 3);
    const seqs = train.slice(0, 4).map((p) => tokenizer.encode(p.chosen).slice(0, 32));
    const batch = tokenBatch(seqs, tokenizer.padId);
    const r = e.score(batch);
    expect(r.shape).toEqual([3, 4]);
    tf.dispose([r, batch.ids, batch.mask]);
    e.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each([['all'], ['top']])(
    'lora scores (merged adapters) as its training pass does (layers %s)',
    (layers) => {
      const e = builtinArchitectureRegistry()
        .create(['lora', { rank: 4, layers: layers === 'all' ? 'all' : { top: 1 } }])
        .build({ gptConfig: config, members: 3, rng: new Rng(5) });
      // non-zero B (fresh adapters are the identity) so the members differ and a wrong merge shows
      const rng = new Rng(9);
      for (const [name, v] of Object.entries(e.tensorFiles()['adapters.safetensors'] ?? {})) {
        if (name.endsWith('lora_B'))
          v.assign(tf.tidy(() => tf.tensor(rng.normalArray(v.size, 0.3), v.shape)));
      }
      const seqs = train.slice(0, 4).map((p) => tokenizer.encode(p.chosen).slice(0, 40));
      const batch = tokenBatch(seqs, tokenizer.padId);
      const before = tf.memory().numTensors;
      const scored = e.score(batch); // [3, 4]
      const trained = e.phases()[1]?.rewards(batch, undefined) as tf.Tensor2D; // [3, 4]
      const a = scored.arraySync();
      const b = trained.arraySync();
      for (const [m, row] of a.entries()) {
        for (const [i, x] of row.entries()) expect(x).toBeCloseTo(b[m]?.[i] as number, 4);
      }
      expect(Math.abs((a[0]?.[0] as number) - (a[1]?.[0] as number))).toBeGreaterThan(1e-3);
      tf.dispose([scored, trained]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([batch.ids, batch.mask]);
      e.dispose();
    },
  );

  it('single refuses more than one member', () => {
    expect(() => build('single', 3)).toThrow(/exactly 1 member/);
  });
});

describe('Bradley-Terry training', () => {
  it('lowers the loss on real pairs and keeps members apart (linear-heads, bootstrap on)', async () => {
    const e = build('linear-heads', 3);
    const before = evaluatePairs(e, tokenizer, train, { maxLength: 64 });
    const losses: number[] = [];
    await trainRewardEnsemble({
      ensemble: e,
      tokenizer,
      pairs: train,
      config: trainConfig({ maxSteps: 12, epochs: 3 }),
      onProgress: (p) => losses.push(p.loss),
    });
    const after = evaluatePairs(e, tokenizer, train, { maxLength: 64 });
    expect(losses).toHaveLength(12);
    expect(after.accuracy).toBeGreaterThan(before.accuracy);
    expect(after.memberCorrelation).toBeLessThan(0.9999);
    e.dispose();
  });

  it("counts truncated pairs; 'left' is the default and 'drop' trains on the pairs that fit", async () => {
    const weights = (e: TrainableEnsemble): number[][] =>
      Object.values(e.tensorFiles()).flatMap((vars) =>
        Object.values(vars).map((v) => Array.from((v as tf.Variable).dataSync())),
      );
    const short: PreferencePair[] = ['Say hi.', 'Name a colour.', 'Count to three.', 'Greet me.'].map(
      (instruction, i) => ({
        ...(train[i] as PreferencePair),
        prompt: { instruction, input: '' },
        chosen: 'Sure: hello.',
        rejected: 'No.',
      }),
    );
    const all = [...train, ...short];
    const withTie = [...all, { ...(train[0] as PreferencePair), tie: true }];
    const cfg = trainConfig({ maxSteps: 2, maxLength: 48 });
    const a = build('linear-heads', 2, 5);
    const ra = await trainRewardEnsemble({ ensemble: a, tokenizer, pairs: withTie, config: cfg });
    const b = build('linear-heads', 2, 5);
    const rb = await trainRewardEnsemble({
      ensemble: b,
      tokenizer,
      pairs: withTie,
      config: cfg,
      truncation: 'left',
    });
    expect(ra.pairs.ties).toBe(1);
    expect(ra.pairs.dropped).toBe(0);
    expect(ra.pairs.used).toBe(all.length);
    expect(ra.pairs.truncated).toBeGreaterThan(0);
    expect(ra.pairs.truncated).toBeLessThanOrEqual(all.length - short.length);
    expect(rb.pairs).toEqual(ra.pairs);
    expect(weights(b)).toEqual(weights(a));
    const c = build('linear-heads', 2, 5);
    const rc = await trainRewardEnsemble({
      ensemble: c,
      tokenizer,
      pairs: withTie,
      config: cfg,
      truncation: 'drop',
    });
    expect(rc.pairs).toEqual({
      used: all.length - ra.pairs.truncated,
      ties: 1,
      dropped: ra.pairs.truncated,
      truncated: 0,
    });
    expect(weights(c)).not.toEqual(weights(a));
    for (const e of [a, b, c]) e.dispose();
  });

  it('saves and loads a checkpoint that scores identically', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'quorum-rm-'));
    const e = build('independent', 2);
    await trainRewardEnsemble({ ensemble: e, tokenizer, pairs: train, config: trainConfig({ maxSteps: 2 }) });
    await saveEnsemble(dir, e, { architectureSource: '@quorum/ensemble', tokenizer });
    const { ensemble: loaded, manifest } = await loadEnsemble(dir, builtinArchitectureRegistry());
    expect(manifest).toMatchObject({ architecture: 'independent', members: 2 });
    const a = evaluatePairs(e, tokenizer, train.slice(0, 8), { maxLength: 64 });
    const b = evaluatePairs(loaded, tokenizer, train.slice(0, 8), { maxLength: 64 });
    expect(b.scores.chosen).toEqual(a.scores.chosen);
    e.dispose();
    loaded.dispose();
  });

  it('resumes after an interruption to the same weights as an uninterrupted run', async () => {
    const dirA = mkdtempSync(path.join(tmpdir(), 'quorum-rm-a-'));
    const dirB = mkdtempSync(path.join(tmpdir(), 'quorum-rm-b-'));
    const cfg = trainConfig({ maxSteps: 4, checkpointEvery: 1 });
    const whole = build('linear-heads', 2, 7);
    await trainRewardEnsemble({ ensemble: whole, tokenizer, pairs: train, config: cfg, out: dirA });

    const stop = new AbortController();
    const first = build('linear-heads', 2, 7);
    const r1 = await trainRewardEnsemble({
      ensemble: first,
      tokenizer,
      pairs: train,
      config: cfg,
      out: dirB,
      signal: stop.signal,
      onProgress: (p) => {
        if (p.step === 2) stop.abort();
      },
    });
    expect(r1.stoppedEarly).toBe(true);
    first.dispose();
    const notes: string[] = [];
    const second = build('linear-heads', 2, 99); // different init: the state must overwrite it
    await trainRewardEnsemble({
      ensemble: second,
      tokenizer,
      pairs: train,
      config: cfg,
      out: dirB,
      resume: true,
      onNote: (m) => notes.push(m),
    });
    expect(notes.join('\n')).toMatch(/resuming at phase members, step 2/);
    const wa = whole.tensorFiles();
    const wb = second.tensorFiles();
    for (const [file, vars] of Object.entries(wa)) {
      for (const [name, v] of Object.entries(vars)) {
        expect(
          Array.from(((wb[file] as Record<string, tf.Variable>)[name] as tf.Variable).dataSync()),
          name,
        ).toEqual(Array.from(v.dataSync()));
      }
    }
    whole.dispose();
    second.dispose();
  });

  it('stops on a non-finite loss or gradient with a clear error and keeps the last good state', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'quorum-rm-nan-'));
    const e = build('single', 1, 3);
    // An absurd learning rate: step 1 is computed from finite gradients and saved, then the weights blow up.
    const run = trainRewardEnsemble({
      ensemble: e,
      tokenizer,
      pairs: train,
      config: trainConfig({ maxSteps: 6, lr: 1e30, clipNorm: 0, checkpointEvery: 1, warmupRatio: 0 }),
      out: dir,
    });
    await expect(run).rejects.toThrow(NumericalError);
    await expect(run).rejects.toThrow(/loss is|gradient norm is/);
    const latest = await new CheckpointStore(path.join(dir, 'train-state')).latest();
    expect(latest).toBeDefined();
    expect(latest?.warnings).toEqual([]);
    const state = decodeSafetensors(latest?.files['state.safetensors'] as Uint8Array);
    for (const rec of Object.values(state.tensors))
      expect(Array.from(rec.data as Float32Array).every(Number.isFinite)).toBe(true);
    e.dispose();
  });
});
