import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type AggregationRule, meanRule } from '@quorum/aggregation';
import { builtinBackendRegistry, ConfigError, DataError, initCompute, NumericalError } from '@quorum/core';
import { builtinArchitectureRegistry } from '@quorum/ensemble';
import { saveTinyEnsemble } from '@quorum/ensemble/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScoreRow, type ScoreRunOptions, scoreFile } from './score.js';

describe('parseScoreRow', () => {
  it('names the file, line and field of a bad row', () => {
    expect(() => parseScoreRow({ instruction: 'x' }, 'a.jsonl', 7)).toThrow(DataError);
    expect(() => parseScoreRow({ instruction: 'x' }, 'a.jsonl', 7)).toThrow(
      /a\.jsonl:7 field "output": is missing/,
    );
    expect(() => parseScoreRow({ instruction: 1, output: 'y' }, 'a.jsonl', 2)).toThrow(
      /field "instruction": must be a string, got number 1/,
    );
    expect(() => parseScoreRow([1], 'a.jsonl', 3)).toThrow(/expected a JSON object/);
  });

  it('reads instruction, optional input and output', () => {
    expect(parseScoreRow({ instruction: 'a', output: 'b', extra: 1 }, 'f', 1)).toEqual({
      instruction: 'a',
      input: '',
      output: 'b',
    });
  });
});

describe('scoreFile', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'quorum-score-file-'));
  const model = path.join(dir, 'rm');
  const at = (name: string): string => path.join(dir, name);
  const row = (i: number): Record<string, unknown> => ({
    id: i,
    instruction: `Question ${i}?`,
    output: `Answer ${i}.`,
  });
  const writeRows = (file: string, lines: readonly unknown[]): void =>
    writeFileSync(file, `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`);
  const options = (input: string, out: string, extra: Partial<ScoreRunOptions> = {}): ScoreRunOptions => ({
    model,
    architectures: builtinArchitectureRegistry(),
    rule: meanRule(),
    input,
    out,
    batchSize: 4,
    chunk: 2,
    ...extra,
  });
  /** `mean` with one aggregate or std replaced. */
  const brokenRule = (field: 'aggregate' | 'std', value: number, index: number): AggregationRule => {
    const mean = meanRule();
    return {
      ...mean,
      name: 'broken',
      aggregateArrays: (rewards) => {
        const r = mean.aggregateArrays(rewards);
        const values = [...r[field]];
        if (index < values.length) values[index] = value;
        return { ...r, [field]: values };
      },
    };
  };

  beforeAll(async () => {
    process.env.QUORUM_QUIET = '1';
    await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
    await saveTinyEnsemble(model);
    writeRows(at('good.jsonl'), [0, 1, 2, 3, 4].map(row));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes finite rewards, reward and std for every row', async () => {
    const result = await scoreFile(options(at('good.jsonl'), at('good.out.jsonl')));
    expect(result.rows).toBe(5);
    const out = readFileSync(at('good.out.jsonl'), 'utf8').trim().split('\n');
    expect(out).toHaveLength(5);
    for (const line of out) {
      const r = JSON.parse(line) as { rewards: number[]; reward: number; std: number };
      for (const x of [...r.rewards, r.reward, r.std]) expect(Number.isFinite(x)).toBe(true);
    }
  });

  it('refuses an output that is the input (also through a symlink) and leaves the input intact', async () => {
    const input = at('same.jsonl');
    writeRows(input, [row(0), row(1)]);
    const before = readFileSync(input, 'utf8');
    await expect(scoreFile(options(input, input))).rejects.toThrow(ConfigError);
    symlinkSync(input, at('same-link.jsonl'));
    await expect(scoreFile(options(input, at('same-link.jsonl')))).rejects.toThrow(/is the input file/);
    expect(readFileSync(input, 'utf8')).toBe(before);
  });

  it('leaves no output behind for a missing input', async () => {
    await expect(scoreFile(options(at('missing.jsonl'), at('missing.out.jsonl')))).rejects.toThrow(
      /missing\.jsonl: file not found/,
    );
    expect(existsSync(at('missing.out.jsonl'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  });

  it('a bad row at line N leaves no partial output and an earlier output untouched', async () => {
    writeRows(at('bad.jsonl'), [row(0), row(1), row(2), row(3), { instruction: 'no output' }, row(5)]);
    writeFileSync(at('bad.out.jsonl'), 'earlier\n');
    await expect(scoreFile(options(at('bad.jsonl'), at('bad.out.jsonl')))).rejects.toThrow(
      /bad\.jsonl:5 field "output": is missing/,
    );
    expect(readFileSync(at('bad.out.jsonl'), 'utf8')).toBe('earlier\n');
    expect(readdirSync(dir).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  });

  it('an output in a missing folder is a DataError naming the folder, before the model is read', async () => {
    const out = at('no-such-folder/out.jsonl');
    const error = await scoreFile({ ...options(at('good.jsonl'), out), model: at('no-model') }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toContain(`the folder ${path.dirname(out)} does not exist`);
  });

  it.each([
    ['aggregate', Number.NaN],
    ['aggregate', Number.POSITIVE_INFINITY],
    ['std', Number.NaN],
  ] as const)('refuses a non-finite %s (%s) naming the row, writing nothing', async (field, value) => {
    const out = at(`nan-${field}-${value}.jsonl`);
    const error = await scoreFile(
      options(at('good.jsonl'), out, { rule: brokenRule(field, value, 1) }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NumericalError);
    // The first chunk (lines 1 and 2) holds the bad value at its index 1: line 2.
    expect((error as Error).message).toMatch(/good\.jsonl:2: the aggregation rule "broken" turned/);
    expect(existsSync(out)).toBe(false);
  });

  it('a row nested too deeply to write back is a DataError at its line', async () => {
    const deep = `{"instruction":"a","output":"b","deep":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
    writeRows(at('deep.jsonl'), [row(0), deep]);
    await expect(scoreFile(options(at('deep.jsonl'), at('deep.out.jsonl')))).rejects.toThrow(
      /deep\.jsonl:2: .*(nested too deeply|levels deep)/,
    );
    expect(existsSync(at('deep.out.jsonl'))).toBe(false);
  });

  it('bounds a chunk by bytes: scores early when the rows reach chunkBytes, refuses one larger row', async () => {
    const size = Buffer.byteLength(JSON.stringify(row(0)));
    const updates: number[] = [];
    const progress = { update: (done: number) => updates.push(done), log: () => undefined };
    await scoreFile(
      options(at('good.jsonl'), at('bytes.out.jsonl'), { chunk: 100, chunkBytes: 2 * size + 1 }),
      progress,
    );
    expect(updates).toEqual([2, 4, 5]);
    expect(readFileSync(at('bytes.out.jsonl'), 'utf8').trim().split('\n')).toHaveLength(5);
    writeRows(at('big.jsonl'), [row(0), { ...row(1), output: 'x'.repeat(4096) }]);
    const error = await scoreFile(options(at('big.jsonl'), at('big.out.jsonl'), { chunkBytes: 1024 })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toMatch(
      /big\.jsonl:2: the row is 4\.\d KiB, more than a chunk may hold \(1\.0 KiB\)/,
    );
    expect((error as DataError).hint).toMatch(/--chunk-bytes/);
    expect(existsSync(at('big.out.jsonl'))).toBe(false);
  });
});
