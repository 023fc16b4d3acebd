import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { disposeGpt, initGpt, savePolicy } from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, initCompute, Rng } from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import { saveTinyEnsemble, tinyGptConfig } from '@quorum/ensemble/testing';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareOutDir } from '../out-dir.js';
import { registerPpo } from './ppo.js';

let dir: string;
beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  dir = await mkdtemp(path.join(tmpdir(), 'quorum-cli-ppo-'));
  const tokenizer = projectTokenizer();
  const gptConfig = tinyGptConfig(tokenizer.vocabSize);
  const vocab = { id: tokenizer.id, size: tokenizer.vocabSize, json: tokenizer.vocab.toJSON() };
  const params = initGpt(gptConfig, new Rng(0));
  await savePolicy(path.join(dir, 'policy'), { config: gptConfig, params, vocab });
  disposeGpt(params);
  await saveTinyEnsemble(path.join(dir, 'rm'));
  writeFileSync(
    path.join(dir, 'prompts.jsonl'),
    '{"instruction": "Say hello."}\n{"instruction": "Add them.", "input": "2 and 3"}\n',
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function program(writeOut?: (s: string) => void): Command {
  const p = new Command('quorum').option('--backend <name>').exitOverride();
  if (writeOut !== undefined) p.configureOutput({ writeOut });
  registerPpo(p);
  return p;
}

/** The 2-step lcb run of the first test, with `extra` flags. */
const runArgs = (out: string, ...extra: string[]): string[] => [
  '--backend',
  'wasm',
  'ppo',
  '--policy',
  path.join(dir, 'policy'),
  '--reward',
  path.join(dir, 'rm'),
  '--agg',
  'lcb',
  '--beta',
  '0.5',
  '--steps',
  '2',
  '--out',
  out,
  '--prompts',
  path.join(dir, 'prompts.jsonl'),
  '--rollout-batch',
  '2',
  '--step-batch',
  '2',
  '--max-new-tokens',
  '6',
  '--lr',
  '1e-3',
  '--kl-estimator',
  'k3',
  '--ppo-opt',
  'warmupSteps=0',
  ...extra,
];

/** Runs `args`, returning what went to stderr. */
async function stderrOf(args: string[]): Promise<string[]> {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    await program().parseAsync(args, { from: 'user' });
  } finally {
    process.stderr.write = write;
  }
  return lines;
}

describe('quorum ppo', () => {
  it('runs 2 steps on a tiny saved policy and ensemble, with lcb, and writes the policy', async () => {
    const out = path.join(dir, 'out');
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      await program().parseAsync(runArgs(out), { from: 'user' });
    } finally {
      process.stderr.write = write;
    }
    const progress = lines.filter((l) => l.startsWith('ppo step'));
    expect(progress).toHaveLength(2);
    expect(progress[1]).toMatch(/^ppo step \[#+\] 2\/2 eta \S+ {2}reward -?\d+\.\d+ \(members .*\) {2}kl /);
    expect(lines.join('')).toMatch(/ppo: 2 steps done; policy written to /);
    expect(readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
    const manifest = JSON.parse(readFileSync(path.join(out, 'quorum.json'), 'utf8')) as {
      kind: string;
      training: { rule: string };
    };
    expect(manifest.kind).toBe('quorum-policy');
    expect(manifest.training.rule).toBe('lcb');
    expect(existsSync(path.join(out, 'train-state'))).toBe(true);
  });

  it('refuses --resume with another --seed or --agg option, listing saved and now; --force-resume records both', async () => {
    const out = path.join(dir, 'out'); // the finished run of the first test
    const refused = program().parseAsync(runArgs(out, '--resume', '--seed', '3', '--beta', '1'), {
      from: 'user',
    });
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(
      program().parseAsync(runArgs(out, '--resume', '--seed', '3', '--beta', '1'), { from: 'user' }),
    ).rejects.toThrow(/rule: saved "lcb\(beta=0.5\)", now "lcb\(beta=1\)"[\s\S]*seed: saved 0, now 3/);
    const lines = await stderrOf(runArgs(out, '--force-resume', '--seed', '3'));
    expect(lines.join('')).toMatch(/warning: resuming with settings that differ[\s\S]*seed: saved 0, now 3/);
    const manifest = JSON.parse(readFileSync(path.join(out, 'quorum.json'), 'utf8')) as {
      training: { forcedResumes: unknown };
    };
    expect(manifest.training.forcedResumes).toEqual([
      { step: 2, differences: [{ setting: 'seed', saved: 0, now: 3 }] },
    ]);
  });

  it('refuses a non-empty --out without --resume or --overwrite, naming both, before loading anything', async () => {
    const out = path.join(dir, 'used');
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'metrics.jsonl'), '{}\n');
    const args = [
      'ppo',
      '--policy',
      path.join(dir, 'nowhere'),
      '--reward',
      path.join(dir, 'rm'),
      '--out',
      out,
    ];
    await expect(program().parseAsync(args, { from: 'user' })).rejects.toThrow(ConfigError);
    await expect(program().parseAsync(args, { from: 'user' })).rejects.toThrow(/--resume[\s\S]*--overwrite/);
    expect(prepareOutDir(out, { resume: true })).toEqual({ resume: true });
    expect(prepareOutDir(out, { overwrite: true })).toEqual({ resume: false });
    expect(existsSync(path.join(out, 'metrics.jsonl'))).toBe(false);
  });

  it('checks the rule and its options before any work', async () => {
    const args = (...extra: string[]) => [
      'ppo',
      '--policy',
      path.join(dir, 'nowhere'),
      '--reward',
      path.join(dir, 'rm'),
      '--out',
      path.join(dir, 'never'),
      ...extra,
    ];
    await expect(
      program().parseAsync(args('--agg', 'mean', '--beta', '1'), { from: 'user' }),
    ).rejects.toThrow(/unknown option "beta"/);
    await expect(program().parseAsync(args('--agg', 'nope'), { from: 'user' })).rejects.toThrow(
      /unknown aggregation-rule "nope"/,
    );
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
  });

  it('--help teaches: defaults, the rule, resume and an example', () => {
    let help = '';
    const p = program((s) => {
      help += s;
    });
    expect(() => p.parse(['ppo', '--help'], { from: 'user' })).toThrow();
    expect(help).toMatch(/--agg <rule>/);
    expect(help).toMatch(/Table 4/);
    expect(help).toMatch(/--resume/);
    expect(help).toMatch(/--force-resume[\s\S]*Compared:\s+--seed,\s+--steps,\s+--lr/);
    expect(help).toMatch(/\$ quorum ppo --policy/);
  });
});
