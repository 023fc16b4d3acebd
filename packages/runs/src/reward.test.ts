// `runRewardTraining` as a user's script calls it: from a policy folder, on the shipped AlpacaEval pairs,
// at nano size, then loaded back and used for Best-of-n offline.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { aggregationRegistry } from '@quorum/aggregation';
import { disposeGpt, gptPreset, initGpt, savePolicy } from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, DataError, initCompute, Rng } from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import { builtinArchitectureRegistry } from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPools, runBestOfN } from './best-of-n.js';
import { loadRewardModel } from './load.js';
import type { RunProgress } from './progress.js';
import { dedupePairs, formatMetrics, loadPairs, resolveArchitecture, runRewardTraining } from './reward.js';

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

let fileNo = 0;
/** Writes rows as a JSONL file in the test folder. */
function jsonl(rows: readonly object[]): string {
  const file = path.join(dir, `prefs-${fileNo++}.jsonl`);
  writeFileSync(file, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return file;
}
const trl = (prompt: string, chosen: string, rejected: string) => ({ prompt, chosen, rejected });
const farm = (instruction: string, a: string, b: string, preference: number) => ({
  instruction,
  input: '',
  output_1: a,
  output_2: b,
  preference,
});
const key = (p: { prompt: { instruction: string; input: string }; chosen: string; rejected: string }) =>
  JSON.stringify([p.prompt.instruction, p.prompt.input, p.chosen, p.rejected]);

describe('loadPairs on a user file (issue 16)', () => {
  it('an empty file, or one of ties only, is a DataError naming the file and the counts', async () => {
    const empty = jsonl([]);
    const e1 = await loadPairs({ data: empty, seed: 0 }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(DataError);
    expect((e1 as DataError).location?.file).toBe(empty);
    expect((e1 as DataError).message).toContain('no usable preference pairs (the file has no rows)');
    const ties = jsonl([farm('a', 'x', 'y', 0), farm('b', 'x', 'y', 0), farm('c', 'x', 'y', 1.5)]);
    await expect(loadPairs({ data: ties, seed: 0 })).rejects.toThrow(
      `${ties}: no usable preference pairs (all 3 rows were left out: 3 ties, 0 with chosen = rejected, 0 duplicates)`,
    );
    const same = jsonl([trl('a', 'x', 'x'), trl('b', 'y', 'y')]);
    await expect(loadPairs({ data: same, seed: 0 })).rejects.toThrow('2 with chosen = rejected');
    const one = jsonl([trl('a', 'x', 'y'), trl('a', 'x', 'y')]);
    await expect(loadPairs({ data: one, seed: 0 })).rejects.toThrow(
      'only 1 distinct pair: holding out 1 for eval leaves none to train on',
    );
  });

  it('leaves out duplicates and chosen = rejected before splitting, warns with the counts and returns them', async () => {
    const rows = [
      ...Array.from({ length: 10 }, (_, i) => trl(`q${i}`, `good ${i}`, 'bad')),
      ...Array.from({ length: 10 }, (_, i) => trl(`q${i}`, `good ${i}`, 'bad')), // every pair twice
      trl('q0', 'same', 'same'),
    ];
    const lines: string[] = [];
    const progress: RunProgress = { update: () => {}, log: (m) => lines.push(m) };
    const data = jsonl(rows);
    const pairs = await loadPairs({ data, seed: 0, evalFraction: 0.2 }, progress);
    expect(pairs.counts).toEqual({ rows: 21, ties: 0, identical: 1, duplicates: 10, inEval: 0 });
    expect([pairs.train.length, pairs.eval.length]).toEqual([8, 2]);
    expect(lines.join('\n')).toContain(
      `warning: ${data}: left out 10 duplicate pairs (same prompt, chosen and rejected), 1 with chosen = rejected; 10 of 21 rows remain`,
    );
    // A held-out file: training pairs that are also in it are left out of training.
    const evalData = jsonl([trl('q1', 'good 1', 'bad'), trl('q2', 'good 2', 'bad')]);
    const split = await loadPairs({ data, evalData, seed: 0 }, progress);
    expect(split.counts?.inEval).toBe(2);
    const held = new Set(split.eval.map(key));
    expect(split.train.filter((p) => held.has(key(p)))).toEqual([]);
    expect(split.train).toHaveLength(8);
  });

  it('property: for any mix of duplicates, ties and chosen = rejected, no eval pair equals a train pair', async () => {
    const row = fc.record({
      instruction: fc.constantFrom('a', 'b', 'c'),
      a: fc.constantFrom('x', 'y', 'z'),
      b: fc.constantFrom('x', 'y', 'z'),
      preference: fc.constantFrom(1, 2, 0),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(row, { maxLength: 40 }),
        fc.double({ min: 0.05, max: 0.6, noNaN: true }),
        fc.nat(1000),
        async (rows, evalFraction, seed) => {
          const data = jsonl(rows.map((r) => farm(r.instruction, r.a, r.b, r.preference)));
          const loaded = await loadPairs({ data, seed, evalFraction }).catch((e: unknown) => e);
          const distinct = dedupePairs(
            rows
              .filter((r) => r.preference !== 0)
              .map((r) => ({
                id: '',
                prompt: { instruction: r.instruction, input: '' },
                chosen: r.preference === 1 ? r.a : r.b,
                rejected: r.preference === 1 ? r.b : r.a,
              })),
          ).pairs.length;
          if (loaded instanceof Error) {
            expect(loaded).toBeInstanceOf(DataError);
            expect(distinct).toBeLessThan(2);
            return;
          }
          const { train, eval: held, counts } = loaded as Awaited<ReturnType<typeof loadPairs>>;
          const trainKeys = new Set(train.map(key));
          expect(held.filter((p) => trainKeys.has(key(p)))).toEqual([]);
          expect(trainKeys.size).toBe(train.length);
          expect([...train, ...held].filter((p) => p.chosen === p.rejected)).toEqual([]);
          expect(train.length + held.length).toBe(distinct);
          expect(
            train.length +
              held.length +
              (counts?.ties ?? 0) +
              (counts?.identical ?? 0) +
              (counts?.duplicates ?? 0),
          ).toBe(rows.length);
        },
      ),
      { numRuns: 120, seed: 16 },
    );
  });
});

describe('length-balanced training pairs (issue 17)', () => {
  // 30 training pairs where the longer answer wins, 10 where the shorter one does (and 4 held out).
  const rows = [
    ...Array.from({ length: 33 }, (_, i) => trl(`long ${i}`, `a long and detailed answer ${i}`, 'short')),
    ...Array.from({ length: 11 }, (_, i) => trl(`short ${i}`, 'terse', `a rambling, padded answer ${i}`)),
  ];
  const longerWon = (pairs: readonly { chosen: string; rejected: string; weight?: number }[]) => {
    let longer = 0;
    let shorter = 0;
    for (const p of pairs) {
      if (p.chosen.length > p.rejected.length) longer += p.weight ?? 1;
      else shorter += p.weight ?? 1;
    }
    return { longer, shorter };
  };

  it('balance sample draws as many pairs the shorter answer won as the longer one; weights splits the weight in half', async () => {
    const data = jsonl(rows);
    const none = await loadPairs({ data, seed: 0, evalFraction: 0.1 });
    const raw = longerWon(none.train);
    expect(raw.longer).toBeGreaterThan(2 * raw.shorter);
    const sample = await loadPairs({ data, seed: 0, evalFraction: 0.1, balance: 'sample' });
    const counted = longerWon(sample.train);
    expect(counted.longer).toBe(raw.shorter);
    expect(counted.shorter).toBe(raw.shorter);
    expect(sample.train).toHaveLength(2 * raw.shorter);
    expect(sample.eval).toEqual(none.eval); // the held-out pairs are not balanced
    expect(sample.description).toBe(`${data} (balance sample)`);
    const weights = await loadPairs({ data, seed: 0, evalFraction: 0.1, balance: 'weights' });
    const w = longerWon(weights.train);
    expect(weights.train).toHaveLength(none.train.length);
    expect(w.longer).toBeCloseTo(w.shorter, 9);
    expect(w.longer + w.shorter).toBeCloseTo(none.train.length, 9);
    expect(none.description).toBe(data);
  });

  it('prints the member correlation of a single model as 1 by definition', () => {
    const m = {
      accuracy: 0.5,
      memberAccuracy: [0.5],
      ece: 0.1,
      disagreement: 0,
      memberCorrelation: 1,
      lengthCorrelation: 0.2,
      longerWinsAccuracy: 0.6,
      pairs: 4,
    };
    expect(formatMetrics(m)).toContain('member correlation 1 (one member)');
    expect(formatMetrics({ ...m, memberAccuracy: [0.5, 0.5], memberCorrelation: 0.25 })).toContain(
      'member correlation 0.250',
    );
  });
});

describe('maxLength auto (issue 17)', () => {
  const architectures = builtinArchitectureRegistry();
  const manifestOf = (folder: string) => JSON.parse(readFileSync(path.join(folder, 'quorum.json'), 'utf8'));

  it("from a policy folder: bounded by the model's context, logged with the share truncated and recorded", async () => {
    const pairs = await loadPairs({ data: 'alpaca-eval', trainLimit: 8, evalLimit: 2, seed: 0 });
    const lines: string[] = [];
    const rm = path.join(dir, 'rm-auto-policy');
    const result = await runRewardTraining(
      {
        architecture: resolveArchitecture(architectures, 'single'),
        members: 1,
        size: 'nano',
        contextLength: 96,
        init: policyDir,
        maxLength: 'auto',
        train: pairs.train,
        eval: pairs.eval,
        dataDescription: pairs.description,
        config: { batchSize: 4, maxSteps: 1, seed: 0 },
        out: rm,
        resume: false,
      },
      { update: () => {}, log: (m) => lines.push(m) },
    );
    // The shipped answers run to hundreds of tokens: the policy's context of 96 sets the length.
    expect(result.maxLength).toBe(96);
    expect(result.maxLengthChoice?.boundedByContext).toBe(true);
    const summary = lines.find((l) => l.startsWith('max length 96 ('));
    expect(summary).toMatch(
      /^max length 96 \(the model's context; the p95 of pair lengths is \d+\); 100\.0% of pairs truncated$/,
    );
    const { training } = manifestOf(rm);
    expect(training.config.maxLength).toBe(96);
    expect(training.maxLengthChoice).toEqual({
      quantile: 0.95,
      quantileLength: result.maxLengthChoice?.quantileLength,
      truncatedShare: 1,
      p50: result.maxLengthChoice?.p50,
      p90: result.maxLengthChoice?.p90,
      p99: result.maxLengthChoice?.p99,
      longest: result.maxLengthChoice?.longest,
    });
    expect(training.maxLengthChoice.p50).toBeLessThanOrEqual(training.maxLengthChoice.longest);
    expect(training.pairs.truncated).toBe(result.pairs.used);
  });

  it('from scratch the chosen length is the model context; a resume keeps it, a new quantile is refused or (forced) uses the saved length', async () => {
    const pairs = await loadPairs({ data: 'alpaca-eval', trainLimit: 8, evalLimit: 2, seed: 0 });
    const rm = path.join(dir, 'rm-auto-scratch');
    const run = (
      lines: string[],
      extra: { resume: boolean; quantile?: number; force?: boolean; stop?: boolean },
    ) =>
      runRewardTraining(
        {
          architecture: resolveArchitecture(architectures, 'single'),
          members: 1,
          size: 'nano',
          contextLength: 64, // not used: the data sizes a from-scratch model
          init: 'scratch',
          maxLength: 'auto',
          maxLengthQuantile: extra.quantile ?? 0.5,
          train: pairs.train,
          eval: pairs.eval,
          dataDescription: pairs.description,
          config: { batchSize: 4, maxSteps: 1, checkpointEvery: 1, seed: 0 },
          out: rm,
          resume: extra.resume,
          forceResume: extra.force,
          ...(extra.stop === true ? { signal: AbortSignal.abort() } : {}),
        },
        { update: () => {}, log: (m) => lines.push(m) },
      );
    // Stopped before its first step: a saved state at step 0 with the length auto chose.
    const first: string[] = [];
    const stopped = await run(first, { resume: false, stop: true });
    expect(stopped.stoppedEarly).toBe(true);
    const chosen = stopped.maxLength;
    expect(chosen % 8).toBe(0);
    expect(chosen).toBeGreaterThan(128); // longer than the nano preset's context: the data decided
    expect(chosen).toBeLessThanOrEqual(1024);
    expect(first).toContain(stopped.maxLengthChoice?.summary);
    expect(stopped.maxLengthChoice?.summary).toMatch(
      new RegExp(`^max length ${chosen} \\(p50 of pair lengths.*\\); \\d+\\.\\d% of pairs truncated$`),
    );

    // The same settings again resolve to the same length; the run finishes.
    const again: string[] = [];
    const resumed = await run(again, { resume: true });
    expect(resumed.stoppedEarly).toBe(false);
    expect(resumed.maxLength).toBe(chosen);
    expect(again).toContain(stopped.maxLengthChoice?.summary);
    const manifest = manifestOf(rm);
    expect(manifest.gptConfig.contextLength).toBe(chosen);
    expect(manifest.training.config.maxLength).toBe(chosen);
    expect(manifest.training.maxLengthChoice.quantile).toBe(0.5);
    const loaded = await loadRewardModel(rm, architectures);
    expect(loaded.ensemble.gptConfig.contextLength).toBe(chosen);
    loaded.ensemble.dispose();

    // Another quantile is another setting: refused, naming it ...
    await expect(run([], { resume: true, quantile: 0.99 })).rejects.toThrow(
      /maxLengthQuantile: saved 0\.5, now 0\.99/,
    );
    // ... and forced, the saved length is kept (the model's shape depends on it) and said so.
    const forced: string[] = [];
    const kept = await run(forced, { resume: true, quantile: 0.99, force: true });
    expect(kept.maxLength).toBe(chosen);
    expect(forced.join('\n')).toMatch(
      new RegExp(
        `max length ${chosen} \\(the saved state's; auto now chooses 1024\\); \\d+\\.\\d% of pairs truncated`,
      ),
    );
    expect(kept.forcedResumes.at(-1)?.differences.map((d) => d.setting)).toEqual(['maxLengthQuantile']);
  });

  it('rejects a quantile without auto before any work', async () => {
    await expect(
      runRewardTraining({
        architecture: resolveArchitecture(architectures, 'single'),
        members: 1,
        size: 'nano',
        contextLength: 64,
        init: 'scratch',
        maxLength: 64,
        maxLengthQuantile: 0.9,
        train: [],
        eval: [],
        dataDescription: 'none',
        config: {},
        out: path.join(dir, 'never'),
        resume: false,
      }),
    ).rejects.toThrow("maxLengthQuantile 0.9 needs maxLength 'auto'");
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
  });
});
