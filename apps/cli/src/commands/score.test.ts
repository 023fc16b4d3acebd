// `quorum score` on a real slice of the shipped AlpacaEval answers, through commander.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import { datasets } from '@quorum/data';
import { saveTinyEnsemble } from '@quorum/ensemble/testing';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerScore } from './score.js';

const dir = mkdtempSync(path.join(tmpdir(), 'quorum-score-'));
const model = path.join(dir, 'rm');
const input = path.join(dir, 'answers.jsonl');
const rows: Record<string, unknown>[] = [];

beforeAll(async () => {
  process.env.QUORUM_QUIET = '1';
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  await saveTinyEnsemble(model);
  // Real rows: the first eval instructions with two shipped answers each, plus extra fields to keep.
  const ae = await datasets.alpacaEval();
  for (const inst of ae.split('eval').slice(0, 5)) {
    for (const generator of [
      'text_davinci_003',
      ae.generators.find((g) => g !== 'text_davinci_003') as string,
    ]) {
      rows.push({
        id: `${inst.id}/${generator}`,
        instruction: inst.instruction,
        output: ae.output(inst.id, generator),
        generator,
      });
    }
  }
  writeFileSync(input, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function score(...args: string[]): Promise<Record<string, unknown>[]> {
  const output = path.join(dir, `out-${Math.random().toString(36).slice(2)}.jsonl`);
  await run('--model', model, '--input', input, '--out', output, ...args);
  return readFileSync(output, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function run(...args: string[]): Promise<void> {
  const program = new Command('quorum').option('--backend <name>').exitOverride();
  registerScore(program);
  await program.parseAsync(['node', 'quorum', 'score', ...args]);
}

describe('quorum score', () => {
  it('writes one row per input row, in order, keeping every field and adding rewards, reward and std', async () => {
    const out = await score('--chunk', '3', '--batch-size', '4');
    expect(out).toHaveLength(rows.length);
    out.forEach((row, i) => {
      expect(row).toMatchObject(rows[i] as object);
      const rewards = row.rewards as number[];
      expect(rewards).toHaveLength(3);
      const mean = rewards.reduce((a, b) => a + b, 0) / 3;
      const std = Math.sqrt(rewards.reduce((a, b) => a + (b - mean) ** 2, 0) / 3);
      expect(row.reward as number).toBeCloseTo(mean, 4);
      expect(row.std as number).toBeCloseTo(std, 4);
    });
  });

  it('applies the rule given with --agg and its options (lcb, --beta)', async () => {
    const out = await score('--agg', 'lcb', '--beta', '2');
    for (const row of out)
      expect(row.reward as number).toBeCloseTo(
        (row.rewards as number[]).reduce((a, b) => a + b, 0) / 3 - 2 * (row.std as number),
        4,
      );
    await expect(score('--agg', 'lcb', '--agg-opt', 'gamma=1')).rejects.toThrow(/unknown option "gamma"/);
    await expect(score('--agg', 'nope')).rejects.toThrow(/unknown aggregation-rule "nope"/);
  });

  it('accepts --output as the old name of --out, and needs --overwrite to replace a file', async () => {
    const output = path.join(dir, 'named.jsonl');
    await run('--model', model, '--input', input, '--output', output);
    expect(readFileSync(output, 'utf8').trim().split('\n')).toHaveLength(rows.length);
    await expect(run('--model', model, '--input', input, '--out', output)).rejects.toThrow(/--overwrite/);
    await run('--model', model, '--input', input, '--out', output, '--overwrite', '--agg', 'min');
    const first = JSON.parse(readFileSync(output, 'utf8').split('\n')[0] as string);
    expect(first.reward).toBeCloseTo(Math.min(...(first.rewards as number[])), 6);
  });

  it('refuses an --out that is the --input (before asking for --overwrite) and passes --chunk-bytes on', async () => {
    const before = readFileSync(input, 'utf8');
    for (const extra of [[], ['--overwrite']])
      await expect(run('--model', model, '--input', input, '--output', input, ...extra)).rejects.toThrow(
        /is the input file .*answers\.jsonl; writing it would destroy/,
      );
    expect(readFileSync(input, 'utf8')).toBe(before);
    const output = path.join(dir, 'small-chunks.jsonl');
    await expect(
      run('--model', model, '--input', input, '--out', output, '--chunk-bytes', '64'),
    ).rejects.toThrow(
      /answers\.jsonl:1: the row is .*, more than a chunk may hold \(64 bytes\)[\s\S]*--chunk-bytes/,
    );
    await expect(
      run('--model', model, '--input', input, '--out', output, '--chunk-bytes', '0'),
    ).rejects.toThrow(/expected a positive integer/);
  });

  it('marks --out as required', async () => {
    await expect(run('--model', model, '--input', input)).rejects.toThrow(
      /required option '--out <file.jsonl>'/,
    );
  });
});
