// `quorum best-of-n` end to end through commander, with a tiny saved policy and reward ensemble.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { disposeGpt, initGpt, loadPolicy, savePolicy } from '@quorum/backbone';
import { argmax } from '@quorum/best-of-n';
import { builtinBackendRegistry, ConfigError, DataError, initCompute, Rng } from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import { builtinArchitectureRegistry, loadEnsemble } from '@quorum/ensemble';
import { saveTinyEnsemble, tinyGptConfig } from '@quorum/ensemble/testing';
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerBestOfN } from './best-of-n.js';

const dir = mkdtempSync(path.join(tmpdir(), 'quorum-bon-'));
const rewardDir = path.join(dir, 'rm');
const policyDir = path.join(dir, 'policy');

/**
 * Tensors that loading and disposing a checkpoint leaves behind by itself (today @quorum/backbone's
 * parameter builder keeps each variable's initial tensor; 0 once that is fixed). The command must leak
 * nothing beyond this.
 */
const loadLeak = { reward: 0, policy: 0 };

beforeAll(async () => {
  process.env.QUORUM_QUIET = '1';
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  const tokenizer = projectTokenizer();
  const gptConfig = tinyGptConfig(tokenizer.vocabSize);
  const vocab = { id: tokenizer.id, size: tokenizer.vocabSize, json: tokenizer.vocab.toJSON() };
  await saveTinyEnsemble(rewardDir);
  const params = initGpt(gptConfig, new Rng(2));
  await savePolicy(policyDir, { config: gptConfig, params, vocab });
  disposeGpt(params);
  let before = tf.memory().numTensors;
  (await loadEnsemble(rewardDir, builtinArchitectureRegistry())).ensemble.dispose();
  loadLeak.reward = tf.memory().numTensors - before;
  before = tf.memory().numTensors;
  disposeGpt((await loadPolicy(policyDir)).params);
  loadLeak.policy = tf.memory().numTensors - before;
});

afterEach(() => vi.restoreAllMocks());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `quorum best-of-n …` and returns what it printed on stdout. */
async function run(...args: string[]): Promise<string> {
  const program = new Command('quorum').option('--backend <name>').exitOverride();
  registerBestOfN(program);
  let stdout = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  await program.parseAsync(['node', 'quorum', '--backend', 'wasm', 'best-of-n', ...args]);
  vi.restoreAllMocks();
  return stdout;
}

describe('quorum best-of-n --pool (offline)', () => {
  it('writes a report and prints win rate ± stderr per (rule, n) with the random and longest baselines', async () => {
    const out = path.join(dir, 'offline.json');
    const before = tf.memory().numTensors;
    const printed = await run(
      '--pool',
      'alpaca-eval',
      '--limit',
      '4',
      '--reward',
      rewardDir,
      '--n',
      '1,2,4,8',
      '--agg',
      'mean,lcb,uwo',
      '--beta',
      '0.5',
      '--agg-opt',
      'uwo.lambda=0.2',
      '--out',
      out,
    );
    expect(tf.memory().numTensors - before).toBe(loadLeak.reward);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report).toMatchObject({
      kind: 'quorum-best-of-n-offline',
      pool: 'alpaca-eval:eval',
      prompts: 4,
      ns: [1, 2, 4, 8],
    });
    expect(report.reward).toMatchObject({ architecture: 'linear-heads', members: 3 });
    expect(report.rules.map((r: { label: string }) => r.label)).toEqual([
      'mean',
      'lcb(beta=0.5)',
      'uwo(lambda=0.2)',
    ]);
    for (const r of report.rules) {
      for (const p of r.curve)
        expect(p.winRate >= 0 && p.winRate <= 100 && Number.isFinite(p.stderr)).toBe(true);
      expect(r.curve[0].winRate).toBeCloseTo(report.baselines.random.winRate, 10);
    }
    expect(report.baselines.longest).toHaveLength(4);
    expect(report.perPrompt).toHaveLength(4);
    expect(Object.keys(report.perPrompt[0].best)).toEqual(['mean', 'lcb(beta=0.5)', 'uwo(lambda=0.2)']);
    expect(printed).toContain('gold win rate against the reference answer (%, mean over 4 prompts');
    expect(printed).toMatch(/lcb\(beta=0\.5\)\s+\d+\.\d ± \d+\.\d/);
    expect(printed).toMatch(/longest\s+\d+\.\d ± /);
    // length control: every point of every rule and both baselines carry the LC win rate
    for (const p of [
      report.baselines.random,
      ...report.baselines.longest,
      ...report.rules.flatMap((r: { curve: unknown[] }) => r.curve),
    ]) {
      expect(p.lc.winRate >= 0 && p.lc.winRate <= 100 && Number.isFinite(p.lc.stderr)).toBe(true);
    }
    for (const p of report.rules[0].curve)
      expect(Object.keys(p.rewardLength)).toEqual(['pearson', 'spearman']);
    expect(printed).toContain('LC: length-controlled win rate (AlpacaEval 2');
    expect(printed).toMatch(/lcb\(beta=0\.5\) LC\s+\d+\.\d ± \d+\.\d/);
    expect(printed).toMatch(/random LC\s+\d+\.\d ± /);
    expect(printed).toMatch(/longest LC\s+\d+\.\d ± /);
    expect(printed).toContain('reward–length correlation of the picked answers (Pearson / Spearman)');
  });

  it('only selects from a pool file without gold verdicts', async () => {
    const file = path.join(dir, 'pool.jsonl');
    writeFileSync(
      file,
      [
        { instruction: 'Name a prime number.', output: '7' },
        { instruction: 'Name a prime number.', output: 'Seven is prime, as is 11.' },
        { instruction: 'Say hello.', output: 'Hello!' },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    const out = path.join(dir, 'select.json');
    const printed = await run('--pool', file, '--reward', rewardDir, '--agg', 'min', '--out', out);
    expect(printed).toContain('no "gold" verdicts');
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.perPrompt.map((p: { candidates: number }) => p.candidates)).toEqual([2, 1]);
    expect(['7', 'Seven is prime, as is 11.']).toContain(report.perPrompt[0].best.min.output);
  });
});

describe('quorum best-of-n --policy (online)', () => {
  it('writes one row per prompt whose best is the argmax of the n aggregated scores', async () => {
    const prompts = path.join(dir, 'prompts.jsonl');
    writeFileSync(
      prompts,
      `${JSON.stringify({ instruction: 'Name a colour.' })}\n${JSON.stringify({ instruction: 'Add.', input: '2 + 2' })}\n`,
    );
    const out = path.join(dir, 'online.jsonl');
    const before = tf.memory().numTensors;
    await run(
      '--policy',
      policyDir,
      '--reward',
      rewardDir,
      '--prompts',
      prompts,
      '--n',
      '5',
      '--chunk',
      '2',
      '--agg',
      'lcb',
      '--beta',
      '0.5',
      '--max-new-tokens',
      '6',
      '--seed',
      '3',
      '--out',
      out,
    );
    expect(tf.memory().numTensors - before).toBe(loadLeak.reward + loadLeak.policy);
    const rows = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(2);
    expect(rows[1].prompt).toEqual({ instruction: 'Add.', input: '2 + 2' });
    for (const r of rows) {
      expect(r).toMatchObject({ rule: 'lcb', label: 'lcb(beta=0.5)', n: 5 });
      expect(r.scores.aggregate).toHaveLength(5);
      expect(r.scores.members).toHaveLength(3);
      expect(r.best.index).toBe(argmax(r.scores.aggregate));
      expect(r.best.aggregate).toBe(Math.max(...r.scores.aggregate));
      expect(typeof r.best.answer).toBe('string');
    }
  });

  it('rejects unclear or unsafe invocations with ConfigErrors naming the flag', async () => {
    const out = path.join(dir, 'x.jsonl');
    await expect(run('--reward', rewardDir, '--out', out)).rejects.toThrow(
      /give --policy \(online\) or --pool/,
    );
    await expect(
      run('--reward', rewardDir, '--pool', 'alpaca-eval', '--policy', policyDir, '--out', out),
    ).rejects.toThrow(ConfigError);
    writeFileSync(out, 'taken\n');
    await expect(run('--reward', rewardDir, '--pool', 'alpaca-eval', '--out', out)).rejects.toThrow(
      /--overwrite/,
    );
    const fresh = path.join(dir, 'y.json');
    await expect(
      run('--reward', rewardDir, '--pool', 'alpaca-eval', '--agg', 'mean,min', '--beta', '1', '--out', fresh),
    ).rejects.toThrow(/--beta sets an option of "lcb", which --agg mean,min does not name/);
    await expect(
      run(
        '--reward',
        rewardDir,
        '--pool',
        'alpaca-eval',
        '--agg',
        'mean,lcb',
        '--agg-opt',
        'beta=1',
        '--out',
        fresh,
      ),
    ).rejects.toThrow(/"beta" does not say which of mean, lcb it is for/);
    await expect(
      run(
        '--reward',
        rewardDir,
        '--pool',
        'alpaca-eval',
        '--agg',
        'mean,lcb',
        '--agg-opt',
        'mean.beta=1',
        '--out',
        fresh,
      ),
    ).rejects.toThrow(/unknown option "beta"/);
    await expect(
      run('--reward', rewardDir, '--policy', policyDir, '--n', '4,8', '--out', fresh),
    ).rejects.toThrow(/takes one n/);
    await expect(
      run('--reward', rewardDir, '--pool', 'alpaca-eval', '--agg', 'lcb,lcb', '--out', fresh),
    ).rejects.toThrow(/named twice/);
    await expect(
      run('--reward', rewardDir, '--pool', 'alpaca-eval', '--limit', '1', '--n', '64', '--out', fresh),
    ).rejects.toThrow(/n = 64 exceeds the \d+ candidates of alpaca-eval\/\d+/);
  });
});

describe('quorum best-of-n outputs', () => {
  it('refuses an --out that is the --pool or --prompts file, and writes nothing when a run fails', async () => {
    const pool = path.join(dir, 'own-pool.jsonl');
    writeFileSync(pool, `${JSON.stringify({ instruction: 'Say hi.', output: 'Hi!' })}\n`);
    const before = readFileSync(pool, 'utf8');
    await expect(run('--pool', pool, '--reward', rewardDir, '--out', pool, '--overwrite')).rejects.toThrow(
      /field "--out": .*is the input file .*own-pool\.jsonl/,
    );
    await expect(
      run('--policy', policyDir, '--prompts', pool, '--reward', rewardDir, '--out', pool, '--overwrite'),
    ).rejects.toThrow(/is the input file/);
    expect(readFileSync(pool, 'utf8')).toBe(before);
    // The report's folder is checked before any answer is scored.
    const nowhere = path.join(dir, 'no-such-folder', 'bon.json');
    const error = await run('--pool', pool, '--reward', path.join(dir, 'no-rm'), '--out', nowhere).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toMatch(/the folder .*no-such-folder does not exist/);
    // Online: the reward model fails to load after the output was opened; no (empty) file is left.
    const online = path.join(dir, 'failed-online.jsonl');
    await expect(
      run('--policy', policyDir, '--prompts', pool, '--reward', path.join(dir, 'no-rm'), '--out', online),
    ).rejects.toThrow();
    expect(existsSync(online)).toBe(false);
  });
});
