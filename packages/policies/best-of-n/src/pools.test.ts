// Pool and prompt files: grouping, and DataErrors that name file, line and field.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DataError } from '@quorum/core';
import { datasets } from '@quorum/data';
import { afterAll, describe, expect, it } from 'vitest';
import { poolsFromAlpacaEval, readPoolFile, readPromptFile } from './pools.js';

const dir = mkdtempSync(path.join(tmpdir(), 'bon-pools-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, lines: readonly unknown[]): string => {
  const file = path.join(dir, name);
  writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'));
  return file;
};

async function dataError(promise: Promise<unknown>): Promise<DataError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DataError);
  return error as DataError;
}

describe('readPoolFile', () => {
  it('groups rows by instruction and input, in order of first appearance', async () => {
    const file = write('pool.jsonl', [
      { instruction: 'Name a prime.', output: '7', gold: 'win', generator: 'a' },
      { instruction: 'Add.', input: '1 + 1', output: '2', gold: 'win' },
      { instruction: 'Name a prime.', output: '8', gold: 'loss' },
      '',
      { instruction: 'Add.', input: '2 + 2', output: '4', gold: 'draw' },
    ]);
    const pools = await readPoolFile(file);
    expect(pools.map((p) => [p.id, p.prompt.instruction, p.prompt.input, p.candidates.length])).toEqual([
      ['pool.jsonl:1', 'Name a prime.', '', 2],
      ['pool.jsonl:2', 'Add.', '1 + 1', 1],
      ['pool.jsonl:5', 'Add.', '2 + 2', 1],
    ]);
    expect(pools[0]?.candidates).toEqual([
      { output: '7', gold: 'win', generator: 'a' },
      { output: '8', gold: 'loss', generator: undefined },
    ]);
  });

  it("keeps a pool's reference answer (for the length-controlled win rate) and refuses two different ones", async () => {
    const pools = await readPoolFile(
      write('ref.jsonl', [
        { instruction: 'Name a prime.', output: '7', gold: 'win', reference: 'Two.' },
        { instruction: 'Name a prime.', output: '8', gold: 'loss' },
        { instruction: 'Add.', output: '2', gold: 'win' },
      ]),
    );
    expect(pools.map((p) => p.reference)).toEqual(['Two.', undefined]);
    const e = await dataError(
      readPoolFile(
        write('ref2.jsonl', [
          { instruction: 'Name a prime.', output: '7', reference: 'Two.' },
          { instruction: 'Name a prime.', output: '8', reference: 'Three.' },
        ]),
      ),
    );
    expect(e.location).toMatchObject({ line: 2, field: 'reference' });
  });

  it('names file, line and field of a bad row', async () => {
    const missing = await dataError(
      readPoolFile(write('m.jsonl', [{ instruction: 'x', output: 'y' }, { instruction: 'x' }])),
    );
    expect(missing.location).toMatchObject({ line: 2, field: 'output' });
    expect(missing.message).toContain('m.jsonl:2 field "output": missing field "output"');
    const gold = await dataError(
      readPoolFile(write('g.jsonl', [{ instruction: 'x', output: 'y', gold: 'tie' }])),
    );
    expect(gold.location).toMatchObject({ line: 1, field: 'gold' });
    const mixed = await dataError(
      readPoolFile(
        write('mix.jsonl', [
          { instruction: 'x', output: 'y', gold: 'win' },
          { instruction: 'x', output: 'z' },
        ]),
      ),
    );
    expect(mixed.location).toMatchObject({ line: 2, field: 'gold' });
    const blank = await dataError(readPoolFile(write('b.jsonl', [{ instruction: ' ', output: 'y' }])));
    expect(blank.location).toMatchObject({ line: 1, field: 'instruction' });
    const notObject = await dataError(readPoolFile(write('a.jsonl', ['[1, 2]'])));
    expect(notObject.location).toMatchObject({ line: 1 });
    const type = await dataError(readPoolFile(write('t.jsonl', [{ instruction: 'x', output: 3 }])));
    expect(type.message).toContain('"output" must be a string');
    await dataError(readPoolFile(write('empty.jsonl', [''])));
  });
});

describe('readPromptFile', () => {
  it('reads prompts and rejects a row without an instruction', async () => {
    const prompts = await readPromptFile(
      write('p.jsonl', [{ instruction: 'Hi.' }, { instruction: 'Sum.', input: '1 2' }]),
    );
    expect(prompts).toEqual([
      { instruction: 'Hi.', input: '' },
      { instruction: 'Sum.', input: '1 2' },
    ]);
    const e = await dataError(readPromptFile(write('q.jsonl', [{ instruction: 'Hi.' }, { prompt: 'Hi.' }])));
    expect(e.location).toMatchObject({ line: 2, field: 'instruction' });
  });
});

describe('poolsFromAlpacaEval', () => {
  it('turns the shipped eval split into 161 pools of 48–51 judged answers', async () => {
    const pools = poolsFromAlpacaEval((await datasets.alpacaEval()).candidatePools('eval'));
    expect(pools).toHaveLength(161);
    for (const p of pools) {
      expect(p.id).toMatch(/^alpaca-eval\/\d+$/);
      expect(p.candidates.length).toBeGreaterThanOrEqual(48);
      expect(p.candidates.every((c) => c.gold !== undefined && c.generator !== undefined)).toBe(true);
      expect(p.reference?.length).toBeGreaterThan(0); // text-davinci-003's answer
    }
  });
});
