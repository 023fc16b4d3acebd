import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, Rng, StrategyRegistry } from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import {
  EnsembleArchitecture,
  loadEnsemble,
  saveEnsemble,
  scoreSequences,
  type TrainableEnsemble,
} from '@quorum/ensemble';
import { contractGptConfig, ensembleArchitectureContract } from '@quorum/ensemble/testing';
import { expectArraysClose, expectNoTensorLeaks, useTestBackend } from '@quorum/testing';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { averageWeights, buildWarm, warmStrategy } from './warm.js';

useTestBackend();

// The shared contract every ensemble architecture keeps (k = 2, one training step per phase, save/load).
ensembleArchitectureContract.run([{ name: 'warm', create: () => warmStrategy.create({}) }]);

const config = contractGptConfig(40);
const seqs = [Int32Array.from([1, 5, 9, 3]), Int32Array.from([2, 7]), Int32Array.from([4, 4, 8, 12, 30, 6])];

function values(vars: Record<string, tf.Variable>): Record<string, number[]> {
  return Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, Array.from(v.dataSync())]));
}

/** Sets every weight of member m to the constant c (phase m's variables are member m's weights). */
function fillMember(ensemble: TrainableEnsemble, m: number, c: number): void {
  for (const v of Object.values(
    (ensemble.phases()[m] as { variables(): Record<string, tf.Variable> }).variables(),
  ))
    v.assign(tf.fill(v.shape, c));
}

describe('averageWeights', () => {
  it('averages element-wise: (1, 2) and (3, 6) give (2, 4); weights 3:1 give (1.5, 3)', () => {
    const a = { w: tf.tensor1d([1, 2]), b: tf.tensor2d([[10]]) };
    const b = { w: tf.tensor1d([3, 6]), b: tf.tensor2d([[20]]) };
    const mean = averageWeights([a, b]);
    expectArraysClose(mean.w?.dataSync() ?? [], [2, 4], { atol: 0, rtol: 0 });
    expectArraysClose(mean.b?.dataSync() ?? [], [15], { atol: 0, rtol: 0 });
    expect(mean.b?.shape).toEqual([1, 1]);
    const weighted = averageWeights([a, b], [3, 1]);
    expectArraysClose(weighted.w?.dataSync() ?? [], [1.5, 3], { atol: 1e-7, rtol: 0 });
    tf.dispose([...Object.values(mean), ...Object.values(weighted)]);
    expect(a.w.isDisposed).toBe(false);
    tf.dispose([a.w, a.b, b.w, b.b]);
  });

  it('leaks nothing beyond the tensors it returns', () => {
    const a = { w: tf.tensor1d([1, 2]) };
    const b = { w: tf.tensor1d([5, 0]) };
    expectNoTensorLeaks(() => tf.dispose(Object.values(averageWeights([a, b, a]))));
    tf.dispose([a.w, b.w]);
  });

  it('refuses models that do not match, naming the tensor', () => {
    const a = { w: tf.tensor1d([1, 2]) };
    const b = { w: tf.tensor1d([1, 2, 3]) };
    const c = { v: tf.tensor1d([1, 2]) };
    expect(() => averageWeights([a, b])).toThrow(/"w" is \[3\] in model 1 but \[2\] in model 0/);
    expect(() => averageWeights([a, c])).toThrow(/missing: w; extra: v/);
    expect(() => averageWeights([])).toThrow(ConfigError);
    expect(() => averageWeights([a, a], [1, -1])).toThrow(/weights/);
    tf.dispose([a.w, b.w, c.v]);
  });
});

describe('warm', () => {
  it('starts every member from the same weights', () => {
    const ensemble = buildWarm({ gptConfig: config, members: 3, rng: new Rng(7) });
    const phases = ensemble.phases();
    const first = Object.values(values(phases[0]?.variables() ?? {}));
    for (const p of phases.slice(1)) expect(Object.values(values(p.variables()))).toEqual(first);
    const r = ensemble.score({ ids: tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'), mask: tf.ones([1, 3]) });
    const [m0, m1, m2] = r.arraySync().map((row) => row[0]);
    expect(m1).toBe(m0);
    expect(m2).toBe(m0);
    r.dispose();
    ensemble.dispose();
  });

  it('finalize() averages the members into one model that scores as a single member', () => {
    const ensemble = buildWarm({ gptConfig: config, members: 3, rng: new Rng(1) });
    const before = ensemble.paramCounts();
    // Members 1, 2 and 3 everywhere: the average is 2 everywhere.
    for (const m of [0, 1, 2]) fillMember(ensemble, m, m + 1);
    const tensorsBefore = tf.memory().numTensors;
    ensemble.finalize?.();
    expect(ensemble.members).toBe(1);
    expect(ensemble.options).toEqual({ averagedFrom: 3 });
    const files = ensemble.tensorFiles();
    expect(Object.keys(files).sort()).toEqual(['backbone.safetensors', 'heads.safetensors']);
    expect(Object.keys(files['heads.safetensors'] ?? {}).sort()).toEqual(['head.b', 'head.w']);
    for (const vars of Object.values(files))
      for (const v of Object.values(vars)) expect(new Set(v.dataSync())).toEqual(new Set([2]));
    // Two of the three members' variables were freed.
    const perMember = Object.keys(ensemble.phases()[0]?.variables() ?? {}).length;
    expect(tensorsBefore - tf.memory().numTensors).toBe(2 * perMember);
    const counts = ensemble.paramCounts();
    expect(counts.total).toBe(before.total / 3);
    expect(counts.members).toBe(1);
    const batch = { ids: tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32'), mask: tf.ones([1, 4]) as tf.Tensor2D };
    const r = ensemble.score(batch);
    expect(r.shape).toEqual([1, 1]);
    expect(Number.isFinite(r.dataSync()[0])).toBe(true);
    tf.dispose([r, batch.ids, batch.mask]);
    ensemble.finalize?.(); // a second call has nothing left to average
    expect(ensemble.members).toBe(1);
    ensemble.dispose();
  });

  // Building is not checked with expectNoTensorLeaks: @quorum/backbone's parameter init currently keeps one
  // tensor per parameter besides its variable. What this architecture owns — its variables — must all go.
  it('frees every variable it holds on dispose, before and after finalize()', () => {
    for (const finalize of [false, true]) {
      const e = buildWarm({ gptConfig: config, members: 2, rng: new Rng(2) });
      const held = Object.values(e.tensorFiles()).reduce((n, vars) => n + Object.keys(vars).length, 0);
      const built = tf.memory().numTensors;
      if (finalize) e.finalize?.();
      e.dispose();
      expect(built - tf.memory().numTensors, `finalize: ${finalize}`).toBe(held);
    }
  });

  it('saves a finalized model as a 1-member checkpoint that loads and scores identically', async () => {
    // A checkpoint carries its tokenizer, so this model is built on the project's.
    const tokenizer = projectTokenizer();
    const ensemble = buildWarm({
      gptConfig: contractGptConfig(tokenizer.vocabSize),
      members: 2,
      rng: new Rng(4),
    });
    fillMember(ensemble, 1, 0.01);
    ensemble.finalize?.();
    const dir = mkdtempSync(path.join(tmpdir(), 'quorum-warm-'));
    try {
      const manifest = await saveEnsemble(dir, ensemble, {
        architectureSource: '@quorum-examples/plugin-warm',
        tokenizer,
      });
      expect(manifest.members).toBe(1);
      expect(manifest.options).toEqual({ averagedFrom: 2 });
      const registry = new StrategyRegistry<EnsembleArchitecture>(EnsembleArchitecture).register(
        warmStrategy,
      );
      const { ensemble: loaded } = await loadEnsemble(dir, registry);
      expect(loaded.members).toBe(1);
      expect(loaded.options).toEqual({ averagedFrom: 2 });
      const a = scoreSequences(loaded, seqs, 0);
      expect(a).toHaveLength(1);
      expect(a).toEqual(scoreSequences(ensemble, seqs, 0));
      loaded.dispose();
    } finally {
      ensemble.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts k(M + L) parameters while training, each phase training M + L', () => {
    const ensemble = buildWarm({ gptConfig: config, members: 3, rng: new Rng(5) });
    const counts = ensemble.paramCounts();
    const arch = warmStrategy.create({});
    const perMember = counts.backbone + counts.head;
    expect(counts.head).toBe(config.dModel + 1);
    expect(counts.total).toBe(3 * perMember);
    expect(arch.expectedParamCounts?.({ M: counts.backbone, L: counts.head, A: 0, k: 3 }).total).toBe(
      counts.total,
    );
    expect(Object.values(counts.byPhase)).toEqual([perMember, perMember, perMember]);
    ensemble.dispose();
  });

  it('rejects averagedFrom on an ensemble to train', () => {
    expect(() => buildWarm({ gptConfig: config, members: 2, rng: new Rng(0) }, { averagedFrom: 2 })).toThrow(
      /averagedFrom/,
    );
    expect(() => warmStrategy.options.parse({ averagedFrom: 1 })).toThrow();
  });
});
