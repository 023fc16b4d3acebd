import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, DataError } from '@quorum/core';
import { builtinArchitectureRegistry, resolveRewardTrainConfig } from '@quorum/ensemble';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { registerSft } from './sft.js';
import { lengthOptions, membersFor, parseArchOptions, recipeConfig, registerTrainRm } from './train-rm.js';

describe('parseArchOptions', () => {
  it('reads LoRA targets as a list (comma or plus) and layers=top:N, which the lora schema accepts', () => {
    for (const targets of ['targets=q,v', 'targets=q+v']) {
      const options = parseArchOptions(['rank=4', targets, 'layers=top:2']);
      expect(options).toEqual({ rank: 4, targets: ['q', 'v'], layers: { top: 2 } });
      expect(() => builtinArchitectureRegistry().create(['lora', options])).not.toThrow();
    }
  });

  it('keeps targets=all-linear as the one name, not a list of one module', () => {
    const options = parseArchOptions(['targets=all-linear']);
    expect(options).toEqual({ targets: 'all-linear' });
    expect(() => builtinArchitectureRegistry().create(['lora', options])).not.toThrow();
  });

  it('leaves a bad target for the schema to reject by name', () => {
    const options = parseArchOptions(['targets=q,x']);
    expect(() => builtinArchitectureRegistry().create(['lora', options])).toThrow(/targets/);
  });
});

describe('membersFor', () => {
  it('uses 1 for single and 3 otherwise, and rejects --members > 1 for single', () => {
    expect(membersFor('single', undefined)).toBe(1);
    expect(membersFor('single', 1)).toBe(1);
    expect(membersFor('lora', undefined)).toBe(3);
    expect(membersFor('linear-heads', 5)).toBe(5);
    expect(() => membersFor('single', 3)).toThrow(ConfigError);
    expect(() => membersFor('single', 3)).toThrow(/exactly 1 member, got --members 3/);
  });
});

describe('quorum train-rm checks every option before any work', () => {
  const cache = mkdtempSync(path.join(tmpdir(), 'quorum-train-rm-'));
  afterAll(() => rmSync(cache, { recursive: true, force: true }));

  async function run(...args: string[]): Promise<void> {
    const program = new Command('quorum').option('--backend <name>').exitOverride();
    registerTrainRm(program);
    await program.parseAsync(['node', 'quorum', 'train-rm', ...args]);
  }

  it('rejects a bad --arch-opt, an unknown --arch and single with --members 3 before training the preset SFT policy', async () => {
    // No --init: a run that got past the checks would start training the preset's SFT policy in QUORUM_CACHE.
    process.env.QUORUM_CACHE = cache;
    const out = path.join(cache, 'rm');
    await expect(run('--arch', 'lora', '--arch-opt', 'rank=-1', '--out', out)).rejects.toThrow(/rank/);
    await expect(run('--arch', 'lora', '--arch-opt', 'nope=1', '--out', out)).rejects.toThrow(
      /unknown option "nope"/,
    );
    await expect(run('--arch', 'lorra', '--out', out)).rejects.toThrow(/did you mean "lora"/);
    await expect(run('--arch', 'single', '--members', '3', '--out', out)).rejects.toThrow(/--members/);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('names the file of an empty or all-tie --data as a DataError, and takes --max-line-bytes', async () => {
    const empty = path.join(cache, 'empty.jsonl');
    writeFileSync(empty, '');
    const ties = path.join(cache, 'ties.jsonl');
    writeFileSync(
      ties,
      '{"instruction": "a", "output_1": "x", "output_2": "y", "preference": 0}\n'.repeat(3),
    );
    const args = (data: string, ...extra: string[]) => [
      'node',
      'quorum',
      '--backend',
      'wasm',
      'train-rm',
      '--init',
      'scratch',
      '--data',
      data,
      '--out',
      path.join(cache, 'rm-data'),
      ...extra,
    ];
    const program = () => {
      const p = new Command('quorum').option('--backend <name>').exitOverride();
      registerTrainRm(p);
      return p;
    };
    await expect(program().parseAsync(args(empty))).rejects.toThrow(DataError);
    await expect(program().parseAsync(args(empty))).rejects.toThrow(`${empty}: no usable preference pairs`);
    await expect(program().parseAsync(args(ties))).rejects.toThrow('3 ties');
    await expect(program().parseAsync(args(ties, '--max-line-bytes', '10'))).rejects.toThrow(
      `${ties}:1: line is longer than 10 bytes`,
    );
    await expect(program().parseAsync(args(ties, '--max-line-bytes', '0'))).rejects.toThrow();
  });

  it('--help lists what --force-resume compares and the --max-line-bytes limit', () => {
    let help = '';
    const p = new Command('quorum').exitOverride().configureOutput({ writeOut: (s) => (help += s) });
    registerTrainRm(p);
    expect(() => p.parse(['train-rm', '--help'], { from: 'user' })).toThrow();
    expect(help).toMatch(/--force-resume[\s\S]*Compared:\s+--seed,\s+--lr,\s+--max-steps/);
    expect(help).toMatch(/--checkpoint-every[\s\S]*may\s+change/);
    expect(help).toMatch(/--max-line-bytes <n>[\s\S]*8 MiB/);
  });
});

describe('train-rm recipe flags (issue 17)', () => {
  const parse = async (...args: string[]): Promise<Record<string, unknown>> => {
    let seen: Record<string, unknown> = {};
    const p = new Command('quorum').exitOverride();
    registerTrainRm(p);
    const cmd = p.commands[0] as Command;
    cmd.action((opts: Record<string, unknown>) => {
      seen = opts;
    });
    await p.parseAsync(['train-rm', '--out', 'x', ...args], { from: 'user' });
    return seen;
  };

  it('adds nothing to the config without flags, so the presets train as before (but the preset step cap)', async () => {
    const opts = await parse();
    expect(recipeConfig(opts as never, 24)).toEqual({ maxSteps: 24 });
    expect(recipeConfig(opts as never, undefined)).toEqual({});
  });

  it('maps --margin, --center-rewards, --objective odin, --diversity, --member-subsets, --time-budget and early stopping', async () => {
    const opts = await parse(
      '--margin',
      '0.5',
      '--center-rewards',
      '0.01',
      '--objective',
      'odin',
      '--odin-orth-weight',
      '2',
      '--diversity',
      '0.1',
      '--member-subsets',
      '--time-budget',
      '30m',
      '--early-stopping',
      '--patience',
      '3',
    );
    const config = recipeConfig(opts as never, 24);
    // The time budget drops the preset's step cap (an explicit --max-steps would keep it).
    expect(config).toEqual({
      margin: 0.5,
      centering: 0.01,
      odin: { lengthWeight: 1, orthWeight: 2 },
      diversity: 0.1,
      memberSubsets: true,
      timeBudget: 1800,
      earlyStopping: { every: 25, patience: 3, fraction: 0.05, maxPairs: 256 },
    });
    expect(() => resolveRewardTrainConfig(config)).not.toThrow();
    expect(recipeConfig({ ...(opts as object), maxSteps: 7 } as never, 24).maxSteps).toBe(7);
  });

  it('rejects a bad duration and settings without the flag they belong to', async () => {
    await expect(parse('--time-budget', 'soon')).rejects.toThrow(/90s, 30m or 1h/);
    await expect(parse('--margin', '-1')).rejects.toThrow(/≥ 0/);
    const odinWeight = await parse('--odin-length-weight', '2');
    expect(() => recipeConfig(odinWeight as never, undefined)).toThrow(/need --objective odin/);
    const patience = await parse('--patience', '2');
    expect(() => recipeConfig(patience as never, undefined)).toThrow(/need --early-stopping/);
  });
});

describe('train-rm --max-length auto (issue 17)', () => {
  const parse = async (...args: string[]): Promise<Record<string, unknown>> => {
    let seen: Record<string, unknown> = {};
    const p = new Command('quorum').exitOverride().configureOutput({ writeErr: () => {} });
    registerTrainRm(p);
    (p.commands[0] as Command).action((opts: Record<string, unknown>) => {
      seen = opts;
    });
    await p.parseAsync(['train-rm', '--out', 'x', ...args], { from: 'user' });
    return seen;
  };

  it('maps auto and --max-length-quantile to the run options; a number still sizes a from-scratch model', async () => {
    const auto = await parse('--init', 'scratch', '--max-length', 'auto', '--max-length-quantile', '0.9');
    expect(auto).toMatchObject({ maxLength: 'auto', maxLengthQuantile: 0.9 });
    // From scratch the run sizes the model from the data; the preset's context is only the fallback.
    expect(lengthOptions(auto as never, 128)).toEqual({
      contextLength: 128,
      maxLength: 'auto',
      maxLengthQuantile: 0.9,
    });
    const fixed = await parse('--init', 'scratch', '--max-length', '256');
    expect(lengthOptions(fixed as never, 128)).toEqual({ contextLength: 256, maxLength: 256 });
    const policy = await parse('--init', 'runs/sft', '--max-length', 'auto');
    expect(lengthOptions(policy as never, 128)).toEqual({ contextLength: 128, maxLength: 'auto' });
    expect(lengthOptions((await parse()) as never, 128)).toEqual({
      contextLength: 128,
      maxLength: undefined,
    });
  });

  it('refuses --max-length abc, a quantile out of 0.5–1, and a quantile without auto', async () => {
    await expect(parse('--max-length', 'abc')).rejects.toThrow(
      /--max-length <n\|auto>' argument 'abc' is invalid. expected a positive integer or auto, got "abc"/,
    );
    await expect(parse('--max-length', '0')).rejects.toThrow(/positive integer or auto/);
    await expect(parse('--max-length', 'auto', '--max-length-quantile', '0.4')).rejects.toThrow(
      /from 0.5 to 1, got "0.4"/,
    );
    await expect(parse('--max-length', 'auto', '--max-length-quantile', '1.5')).rejects.toThrow(
      /from 0.5 to 1/,
    );
    const noAuto = await parse('--max-length', '64', '--max-length-quantile', '0.9');
    expect(() => lengthOptions(noAuto as never, 128)).toThrow(ConfigError);
    expect(() => lengthOptions(noAuto as never, 128)).toThrow(
      '--max-length-quantile needs --max-length auto',
    );
  });

  it('auto is refused by a command that does not take it (sft)', async () => {
    const p = new Command('quorum').exitOverride().configureOutput({ writeErr: () => {} });
    registerSft(p);
    (p.commands[0] as Command).action(() => {});
    await expect(
      p.parseAsync(['sft', '--out', 'x', '--max-length', 'auto'], { from: 'user' }),
    ).rejects.toThrow(
      /--max-length <n>' argument 'auto' is invalid. expected a positive integer, got "auto"/,
    );
  });

  it('--help says what auto chooses', () => {
    let help = '';
    const p = new Command('quorum').exitOverride().configureOutput({ writeOut: (s) => (help += s) });
    registerTrainRm(p);
    expect(() => p.parse(['train-rm', '--help'], { from: 'user' })).toThrow();
    expect(help.replace(/\s+/g, ' ')).toContain(
      "auto: the p95 of the training pairs' token lengths, rounded up to 8, bounded by the model's context (printed with the share of pairs truncated)",
    );
    expect(help).toMatch(/--max-length-quantile <q>/);
  });
});
