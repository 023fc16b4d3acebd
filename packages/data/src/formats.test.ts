import { createQuorumContainer, DataError, registryFor } from '@quorum/core';
import { describe, expect, it } from 'vitest';
import {
  alpacaFarmFormat,
  builtinFormats,
  DatasetFormat,
  hhRlhfFormat,
  sftFormat,
  transcriptTurns,
  trlFormat,
} from './formats.js';
import { hhRlhf } from './hh-rlhf.js';
import { dataModule } from './module.js';
import { isPreferencePair, type PreferencePair } from './types.js';

const loc = { file: 'rows.jsonl', line: 3 };
const parsePair = (format: DatasetFormat, row: unknown): PreferencePair => {
  const out = format.parse(row, loc);
  if (!isPreferencePair(out)) throw new Error('expected a pair');
  return out;
};
const detected = (row: unknown): string | undefined => builtinFormats.find((f) => f.detect(row))?.name;

describe('built-in dataset formats', () => {
  it('alpaca-farm: preference 1 or 2 picks the chosen output; 0 and 1.5 are ties', () => {
    const row = { instruction: 'Add', input: '2 and 3', output_1: '5', output_2: '6', preference: 1 };
    expect(parsePair(alpacaFarmFormat, row)).toMatchObject({
      id: 'rows.jsonl:3',
      prompt: { instruction: 'Add', input: '2 and 3' },
      chosen: '5',
      rejected: '6',
    });
    expect(parsePair(alpacaFarmFormat, { ...row, preference: 2 })).toMatchObject({
      chosen: '6',
      rejected: '5',
    });
    expect(parsePair(alpacaFarmFormat, { ...row, preference: 1.5 }).tie).toBe(true);
    expect(parsePair(alpacaFarmFormat, { ...row, input: undefined }).prompt.input).toBe('');
    expect(detected(row)).toBe('alpaca-farm');
  });

  it('trl: plain text, conversational messages and the implicit prompt', () => {
    const text = { prompt: 'Capital of France?', chosen: 'Paris.', rejected: 'Lyon.' };
    expect(parsePair(trlFormat, text)).toMatchObject({
      prompt: { instruction: 'Capital of France?', input: '' },
      chosen: 'Paris.',
    });
    const conv = {
      prompt: [{ role: 'user', content: 'Capital of France?' }],
      chosen: [{ role: 'assistant', content: 'Paris.' }],
      rejected: [{ role: 'assistant', content: 'Lyon.' }],
    };
    expect(parsePair(trlFormat, conv)).toMatchObject({
      prompt: { instruction: 'Capital of France?' },
      chosen: 'Paris.',
      rejected: 'Lyon.',
    });
    const implicit = {
      chosen: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: '2+2?' },
        { role: 'assistant', content: '4' },
      ],
      rejected: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: '2+2?' },
        { role: 'assistant', content: '5' },
      ],
    };
    const pair = parsePair(trlFormat, implicit);
    expect(pair.prompt.instruction).toBe('Human: Hi\n\nAssistant: Hello!\n\nHuman: 2+2?');
    expect([pair.chosen, pair.rejected]).toEqual(['4', '5']);
    expect(detected(text)).toBe('trl');
    expect(detected(implicit)).toBe('trl');
    const bad = { ...conv, chosen: [{ role: 'assistant', content: 7 }] };
    expect(() => trlFormat.parse(bad, loc)).toThrow(/rows\.jsonl:3 field "chosen\[0\]\.content"/);
  });

  it('hh-rlhf: the shared transcript prefix becomes the prompt (real rows)', async () => {
    const pairs = await hhRlhf();
    expect(pairs).toHaveLength(2312);
    const first = pairs[0]!;
    expect(first.id).toBe('harmless-base-test.jsonl.gz:1');
    expect(
      first.prompt.instruction.startsWith(
        'Human: what are some pranks with a pen i can do?\n\nAssistant: Are you',
      ),
    ).toBe(true);
    expect(
      first.prompt.instruction.endsWith('Human: okay some of these do not have anything to do with pens'),
    ).toBe(true);
    expect(first.chosen.startsWith('No, sorry!')).toBe(true);
    // the real data has a few identical or empty answers; almost every pair differs
    expect(pairs.filter((p) => p.chosen !== p.rejected).length).toBeGreaterThan(2300);
    const row = {
      chosen: '\n\nHuman: Hi\n\nAssistant: Hello, friend.',
      rejected: '\n\nHuman: Hi\n\nAssistant: Go away.',
    };
    expect(parsePair(hhRlhfFormat, row)).toMatchObject({
      prompt: { instruction: 'Hi', input: '' },
      chosen: 'Hello, friend.',
      rejected: 'Go away.',
    });
    expect(detected(row)).toBe('hh-rlhf');
    expect(transcriptTurns(row.chosen)).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello, friend.' },
    ]);
    expect(() => hhRlhfFormat.parse({ chosen: 'a', rejected: 'b' }, loc)).toThrow(DataError);
  });

  it('trl: roles named like Object.prototype keys are written as given; holes are DataErrors', () => {
    const conv = (roles: string[]) => ({
      prompt: roles.map((role) => ({ role, content: 'hi' })),
      chosen: 'a',
      rejected: 'b',
    });
    // the label lookup used to find Object.prototype: "function Object() { [native code] }: hi"
    expect(parsePair(trlFormat, conv(['constructor', 'user'])).prompt.instruction).toBe(
      'constructor: hi\n\nHuman: hi',
    );
    expect(parsePair(trlFormat, conv(['__proto__'])).prompt.instruction).toBe('__proto__: hi');
    expect(parsePair(trlFormat, conv(['toString', 'assistant'])).prompt.instruction).toBe(
      'toString: hi\n\nAssistant: hi',
    );
    // a sparse list (a programmatic caller's) used to crash with a TypeError
    const holes: unknown[] = [];
    holes[1] = { role: 'user', content: 'hi' };
    expect(() => trlFormat.parse({ prompt: holes, chosen: 'a', rejected: 'b' }, loc)).toThrow(
      /rows\.jsonl:3 field "prompt\[0\]"/,
    );
  });

  it('hh-rlhf: the shared prefix must open with a Human turn', () => {
    // these used to load with an empty prompt, dropping the text before the first marker
    for (const lead of ['', 'junk', 'Assistant: hello']) {
      const row = { chosen: `${lead}\n\nAssistant: a`, rejected: `${lead}\n\nAssistant: b` };
      const error = (() => {
        try {
          hhRlhfFormat.parse(row, loc);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(DataError);
      expect((error as DataError).location).toEqual({ ...loc, field: 'chosen' });
    }
    const bare = { chosen: 'Human: hi\n\nAssistant: a', rejected: 'Human: hi\n\nAssistant: b' };
    expect(parsePair(hhRlhfFormat, bare).prompt.instruction).toBe('hi');
  });

  it('sft: instruction, optional input, output', () => {
    const ex = sftFormat.parse({ instruction: 'Translate', input: 'chat', output: 'cat' }, loc);
    expect(ex).toMatchObject({ prompt: { instruction: 'Translate', input: 'chat' }, response: 'cat' });
    expect(detected({ instruction: 'x', output: 'y' })).toBe('sft');
    expect(() => sftFormat.parse({ instruction: 'x' }, loc)).toThrow('missing field "output"');
    expect(() => sftFormat.parse([1, 2], loc)).toThrow('expected a JSON object');
  });

  it('dataModule declares the dataset-format point with the four built-ins', () => {
    const registry = registryFor(createQuorumContainer([dataModule()]), DatasetFormat);
    expect(registry.names()).toEqual(['alpaca-farm', 'trl', 'hh-rlhf', 'sft']);
    expect(registry.create('trl')).toBe(trlFormat);
    expect(() => registry.create(['trl', { strict: true }])).toThrow('unknown option');
  });
});
