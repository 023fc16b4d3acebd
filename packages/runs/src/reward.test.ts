// `runRewardTraining` as a user's script calls it: from a policy folder, on the shipped AlpacaEval pairs,
// at nano size, then loaded back and used for Best-of-n offline.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { aggregationRegistry } from '@quorum/aggregation';
import { disposeGpt, gptPreset, initGpt, savePolicy } from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, initCompute, Rng } from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import { builtinArchitectureRegistry } from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPools, runBestOfN } from './best-of-n.js';
import { loadRewardModel } from './load.js';
import type { RunProgress } from './progress.js';
import { loadPairs, resolveArchitecture, runRewardTraining } from './reward.js';

const dir = mkdtempSync(path.join(tmpdir(), 'quorum-runs-'));
const policyDir = path.join(dir, 'policy');
const out = path.join(dir, 'rm');

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  const tokenizer = projectTokenizer();
  // A nano policy (one layer, so the test is fast), saved as `quorum sft` saves one.
  const config = gptPreset('nano', { vocabSize: tokenizer.vocabSize, nLayers: 1, contextLength: 96 });
  const params = initGpt(config, new Rng(3));
  await savePolicy(policyDir, {
    config,
    params,
    vocab: { id: tokenizer.id, size: tokenizer.vocabSize },
    tokenizerFiles: tokenizer.files(),
  });
  disposeGpt(params);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runRewardTraining from a policy folder', () => {
  it('trains linear-heads (k = 2) on shipped pairs, writes a loadable folder and reports progress', async () => {
    const architectures = builtinArchitectureRegistry();
    const pairs = await loadPairs({ data: 'alpaca-eval', trainLimit: 24, evalLimit: 12, seed: 0 });
    expect([pairs.train.length, pairs.eval.length]).toEqual([24, 12]);
    const updates: number[] = [];
    const lines: string[] = [];
    const progress: RunProgress = { update: (done) => updates.push(done), log: (m) => lines.push(m) };
    const before = tf.memory().numTensors;
    const result = await runRewardTraining(
      {
        architecture: resolveArchitecture(architectures, 'linear-heads'),
        members: 2,
        size: 'nano',
        contextLength: 96,
        init: policyDir,
        train: pairs.train,
        eval: pairs.eval,
        dataDescription: pairs.description,
        config: { batchSize: 8, maxSteps: 2, seed: 0 },
        out,
        resume: false,
      },
      progress,
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(result.stoppedEarly).toBe(false);
    expect(result.metrics?.pairs).toBe(12);
    expect(result.metrics?.memberAccuracy).toHaveLength(2);
    expect(updates.length).toBeGreaterThan(0);
    expect(lines).toContain('scoring 12 held-out pairs');
    const manifest = JSON.parse(readFileSync(path.join(out, 'quorum.json'), 'utf8'));
    expect(manifest).toMatchObject({ architecture: 'linear-heads', members: 2 });
    expect(existsSync(path.join(out, 'eval.json'))).toBe(true);

    // The folder is what Best-of-n loads: offline over two shipped pools, mean vs lcb.
    const rules = aggregationRegistry();
    const bon = await runBestOfN({
      mode: 'offline',
      reward: out,
      architectures,
      pools: await loadPools('alpaca-eval', 'eval', 2),
      poolSource: 'alpaca-eval:eval',
      rules: [
        { label: 'mean', rule: rules.create('mean') },
        { label: 'lcb', rule: rules.create(['lcb', { beta: 1 }]) },
      ],
      ns: [1, 4],
      batchSize: 32,
    });
    expect(bon.gold).toBe(true);
    if (bon.gold) expect(bon.report.rules.map((r) => r.curve.length)).toEqual([2, 2]);
    const loaded = await loadRewardModel(out, architectures);
    expect(loaded.tokenizer.id).toBe(projectTokenizer().id);
    loaded.ensemble.dispose();
  });

  it('rejects a bad architecture option by name before any work', () => {
    expect(() => resolveArchitecture(builtinArchitectureRegistry(), ['lora', { rank: 0 }], '--arch')).toThrow(
      ConfigError,
    );
    expect(() => resolveArchitecture(builtinArchitectureRegistry(), 'lorra', '--arch')).toThrow(
      /did you mean "lora"/,
    );
  });
});
