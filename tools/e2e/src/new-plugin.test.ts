// The plugin generator, end to end: scaffold an aggregation plugin inside the workspace (so @quorum/*
// resolve from the root node_modules), build it, run its tests, then load it into the real CLI and score
// answers with the new rule.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import { saveEnsemble, singleArchitecture } from '@quorum/ensemble';
import { contractGptConfig } from '@quorum/ensemble/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const generator = path.join(root, 'tools/new-plugin/index.mjs');
const bin = path.join(root, 'apps/cli/bin/quorum.js');

function run(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, QUORUM_BACKEND: '', CI: '1' },
    timeout: 300_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('tools/new-plugin', () => {
  let scratch = '';

  beforeAll(() => {
    scratch = mkdtempSync(path.join(root, 'tools/e2e/.tmp-'));
  });

  afterAll(() => {
    if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
  });

  it('teaches with --help and refuses bad arguments with a hint', () => {
    const help = run(process.execPath, [generator, '--help'], root);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--kind KIND/);
    for (const kind of ['aggregation', 'architecture', 'judge', 'backend'])
      expect(help.stdout).toContain(kind);
    const badKind = run(process.execPath, [generator, '--kind', 'rule', '--name', 'x'], root);
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toMatch(/--kind must be one of aggregation, architecture, judge, backend/);
    const badName = run(process.execPath, [generator, '--kind', 'aggregation', '--name', 'My_Rule'], root);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toMatch(/kebab-case/);
  });

  it('generates an aggregation plugin that builds, passes its tests, and loads into quorum', () => {
    const dir = path.join(scratch, 'lcb-plus');
    const gen = run(
      process.execPath,
      [generator, '--kind', 'aggregation', '--name', 'lcb-plus', '--dir', dir],
      root,
    );
    expect(gen.code, gen.stderr).toBe(0);
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.exports).toMatchObject({ '.': { import: './dist/index.js', types: './dist/index.d.ts' } });
    expect(pkg.files).toContain('dist');
    expect(readFileSync(path.join(dir, '.changeset/lcb-plus.md'), 'utf8')).toMatch(
      /"quorum-plugin-lcb-plus": minor/,
    );

    // A second run into the same folder refuses to overwrite it.
    const again = run(
      process.execPath,
      [generator, '--kind', 'aggregation', '--name', 'lcb-plus', '--dir', dir],
      root,
    );
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/not empty/);

    const build = run('npx', ['tsc', '-p', 'tsconfig.json'], dir);
    expect(build.code, build.stdout + build.stderr).toBe(0);
    const typecheck = run('npx', ['tsc', '-p', 'tsconfig.test.json'], dir);
    expect(typecheck.code, typecheck.stdout + typecheck.stderr).toBe(0);
    const test = run('npx', ['vitest', 'run', '--reporter=verbose'], dir);
    expect(test.code, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toMatch(/AggregationRule/);

    const info = run(process.execPath, [bin, 'info', '--json', '--plugin', dir], root);
    expect(info.code, info.stderr).toBe(0);
    const report = JSON.parse(info.stdout) as { strategies: Record<string, string[]> };
    expect(report.strategies['aggregation-rule']).toContain('lcb-plus');
  });

  it('scores answers with the generated rule through `quorum score`', async () => {
    const dir = path.join(scratch, 'lcb-plus');
    await initCompute({ registry: builtinBackendRegistry(), backend: 'cpu' });
    const tokenizer = projectTokenizer();
    const ensemble = singleArchitecture
      .create({})
      .build({ gptConfig: contractGptConfig(tokenizer.vocabSize), members: 1, rng: new Rng(3) });
    const model = path.join(scratch, 'rm');
    await saveEnsemble(model, ensemble, {
      architectureSource: '@quorum/ensemble',
      vocab: { id: tokenizer.id, size: tokenizer.vocabSize, json: tokenizer.vocab.toJSON() },
    });
    ensemble.dispose();
    mkdirSync(scratch, { recursive: true });
    const input = path.join(scratch, 'answers.jsonl');
    const output = path.join(scratch, 'scored.jsonl');
    writeFileSync(
      input,
      '{"instruction":"Say hi.","output":"Hello!"}\n{"instruction":"2+2?","output":"4"}\n',
    );
    const scored = run(
      process.execPath,
      [
        bin,
        'score',
        '--plugin',
        dir,
        '--model',
        model,
        '--input',
        input,
        '--output',
        output,
        '--agg',
        'lcb-plus',
        '--agg-opt',
        'beta=2',
      ],
      root,
    );
    expect(scored.code, scored.stderr).toBe(0);
    const rows = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { rewards: number[]; reward: number; std: number });
    expect(rows).toHaveLength(2);
    // One member: std 0, so mean − β·std is that member's reward.
    for (const row of rows) {
      expect(row.std).toBe(0);
      expect(row.reward).toBeCloseTo(row.rewards[0] as number, 6);
    }
  });
});
