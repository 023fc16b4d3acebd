// The example plugin through the real CLI: `--plugin examples/plugin-warm` adds `warm` and `softmin` with no
// change to any other package, and `quorum score` uses the plugin's architecture and rule by name.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import { saveEnsemble } from '@quorum/ensemble';
import { contractGptConfig } from '@quorum/ensemble/testing';
import { buildWarm, softminAggregateArrays } from '@quorum-examples/plugin-warm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'apps/cli/bin/quorum.js');
const plugin = 'examples/plugin-warm';

function quorum(args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, QUORUM_BACKEND: '' },
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('quorum info --plugin examples/plugin-warm (real process)', () => {
  it('lists warm under ensemble-architecture and softmin under aggregation-rule, beside the built-ins', () => {
    const { code, stdout, stderr } = quorum(['info', '--json', '--plugin', plugin]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as {
      strategies: Record<string, string[]>;
      plugins: { name: string; entry: string }[];
    };
    expect(report.strategies['ensemble-architecture']).toEqual([
      'single',
      'independent',
      'linear-heads',
      'lora',
      'warm',
    ]);
    expect(report.strategies['aggregation-rule']).toEqual(expect.arrayContaining(['mean', 'lcb', 'softmin']));
    expect(report.plugins.map((p) => p.name)).toEqual(['@quorum-examples/plugin-warm']);
  });

  it('names the plugin as the source in the text report', () => {
    const { code, stdout } = quorum(['info', '--plugin', plugin]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/warm\s+WARM: .*\[@quorum-examples\/plugin-warm\]/);
    expect(stdout).toMatch(/softmin\s+soft worst case.*\[@quorum-examples\/plugin-warm\]/);
  });

  it('does not list them without the plugin', () => {
    const { code, stdout } = quorum(['info', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { strategies: Record<string, string[]> };
    expect(report.strategies['ensemble-architecture']).not.toContain('warm');
    expect(report.strategies['aggregation-rule']).not.toContain('softmin');
  });
});

describe('quorum score with the plugin (real process)', () => {
  let dir = '';
  const answers = [
    { instruction: 'Name a primary colour.', output: 'Red.', id: 'a' },
    { instruction: 'What is 2 + 2?', input: '', output: '2 + 2 equals 4.', id: 'b' },
    { instruction: 'Say hello in French.', output: 'Bonjour!', id: 'c' },
  ];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'quorum-e2e-warm-'));
    await initCompute({ registry: builtinBackendRegistry(), backend: 'cpu' });
    const tokenizer = projectTokenizer();
    const gptConfig = contractGptConfig(tokenizer.vocabSize);
    const vocab = { id: tokenizer.id, size: tokenizer.vocabSize, json: tokenizer.vocab.toJSON() };
    const architectureSource = '@quorum-examples/plugin-warm';
    // Two untrained 2-member warm ensembles: one as the trainer leaves it before finalize(), one averaged.
    for (const finalize of [false, true]) {
      const ensemble = buildWarm({ gptConfig, members: 2, rng: new Rng(finalize ? 2 : 1) });
      // Make the members differ, as training would, so the rule has a spread to work on.
      const head = ensemble.tensorFiles()['heads.safetensors'] ?? {};
      head['member-1.head.b']?.assign(head['member-1.head.b'].add(0.75));
      if (finalize) ensemble.finalize?.();
      await saveEnsemble(path.join(dir, finalize ? 'rm-averaged' : 'rm-members'), ensemble, {
        architectureSource,
        vocab,
      });
      ensemble.dispose();
    }
    writeFileSync(path.join(dir, 'answers.jsonl'), `${answers.map((a) => JSON.stringify(a)).join('\n')}\n`);
  });

  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  function score(model: string, extra: string[]): Record<string, unknown>[] {
    const out = path.join(dir, `${model}.scored.jsonl`);
    const args = [
      'score',
      '--plugin',
      plugin,
      '--model',
      path.join(dir, model),
      '--input',
      path.join(dir, 'answers.jsonl'),
      '--output',
      out,
      ...extra,
    ];
    const { code, stderr } = quorum(args);
    expect(code, stderr).toBe(0);
    return readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it('scores with a 2-member warm ensemble and the softmin rule, one row per input row', () => {
    const rows = score('rm-members', ['--agg', 'softmin', '--agg-opt', 'tau=0.5']);
    expect(rows.map((r) => r.id)).toEqual(['a', 'b', 'c']);
    for (const row of rows) {
      const rewards = row.rewards as number[];
      expect(rewards).toHaveLength(2);
      const expected = softminAggregateArrays(
        [[rewards[0] as number], [rewards[1] as number]],
        0.5,
      )[0] as number;
      expect(row.reward as number).toBeCloseTo(expected, 5);
      expect(row.reward as number).toBeLessThanOrEqual(
        ((rewards[0] as number) + (rewards[1] as number)) / 2 + 1e-6,
      );
      expect(row.reward as number).toBeGreaterThanOrEqual(Math.min(...rewards) - 1e-6);
    }
  });

  it('scores with the averaged model as a single member', () => {
    const rows = score('rm-averaged', ['--agg', 'softmin']);
    for (const row of rows) {
      const rewards = row.rewards as number[];
      expect(rewards).toHaveLength(1);
      expect(row.reward as number).toBeCloseTo(rewards[0] as number, 5);
      expect(row.std).toBe(0);
    }
  });

  it('says which plugin to load when the checkpoint needs it', () => {
    const { code, stderr } = quorum([
      'score',
      '--model',
      path.join(dir, 'rm-members'),
      '--input',
      path.join(dir, 'answers.jsonl'),
      '--output',
      path.join(dir, 'x.jsonl'),
    ]);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/--plugin @quorum-examples\/plugin-warm/);
  });
});
