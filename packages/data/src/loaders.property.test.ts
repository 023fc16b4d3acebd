/**
 * Property tests of every loader of @quorum/data (issue 9, bad input). Thousands of malformed inputs —
 * any JSON value, rows with the right keys and wrong types, empty and megabyte strings, lone surrogates,
 * `__proto__`/`constructor` keys and roles, sparse message lists, HH transcripts with broken turns,
 * random bytes, invalid UTF-8, CRLF, BOMs, blank and very long lines, truncated gzip — give either a
 * valid example or a typed error naming where the problem is: a DataError at file:line (and field) for
 * data, a ConfigError naming the option for template/collate options. Never another exception, a hang,
 * a wrong count or a write to Object.prototype.
 *
 *   1. each DatasetFormat's parse on its own, against a plain model of the format (the spec, written
 *      out naively): same example, or a DataError naming the same field;
 *   2. loadPreferencePairs / loadSftExamples on whole files, in both onError modes, against the line
 *      tags the generator knows (valid / tie / bad / blank) or a line-by-line oracle for random bytes;
 *   3. encodePromptResponse, encodePrompt and collate with arbitrary text and lengths.
 *
 * Fixed seeds throughout, so every run tries the same inputs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ConfigError, DataError } from '@quorum/core';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { collate } from './collate.js';
import {
  alpacaFarmFormat,
  builtinFormats,
  type DatasetFormat,
  hhRlhfFormat,
  sftFormat,
  type Turn,
  trlFormat,
} from './formats.js';
import { type LoadOptions, type LoadStats, loadPreferencePairs, loadSftExamples } from './load.js';
import { encodePrompt, encodePromptResponse } from './template.js';
import { projectTokenizer } from './tokenizer.js';
import { isPreferencePair, type PreferencePair, type RowLocation, type SftExample } from './types.js';

type Example = PreferencePair | SftExample;

/** A message longer than this is unreadable; user input (megabyte strings, huge keys) must be clipped. */
const MAX_MESSAGE = 2000;

// ------------------------------------------------------------------ shared arbitraries

/** Keys that break naive object handling. */
const DANGEROUS_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
  'then',
  '',
];

const awkwardNumber = fc.constantFrom(
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -0,
  1e308,
  Number.MIN_VALUE,
  Number.MAX_SAFE_INTEGER + 2,
  0.5,
  -1,
  3,
  1.0000001,
);
const longString = fc
  .oneof(
    { weight: 8, arbitrary: fc.constantFrom(1_000, 100_000) },
    { weight: 1, arbitrary: fc.constant(1_000_000) },
  )
  .map((n) => 'x'.repeat(n));
const deep = fc.integer({ min: 10, max: 2000 }).map((depth) => {
  let v: unknown = 'x';
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? { content: v } : [v];
  return v;
});
/** What `JSON.parse` builds from prototype-polluting text: `__proto__` is an own key, not the prototype. */
const polluting = fc.constantFrom(
  JSON.parse('{"__proto__": {"polluted": true}}') as unknown,
  JSON.parse('{"constructor": {"prototype": {"polluted": true}}}') as unknown,
  JSON.parse('{"__proto__": null, "chosen": "a", "rejected": "b"}') as unknown,
  JSON.parse('{"__proto__": {"instruction": "x", "output": "y"}}') as unknown,
);
const garbage: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({
    maxDepth: 3,
    withBigInt: true,
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withObjectString: true,
    withTypedArray: true,
    withSparseArray: true,
    withUnicodeString: true,
    key: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom(...DANGEROUS_KEYS)),
  }),
  fc.json().map((text) => JSON.parse(text) as unknown),
  awkwardNumber,
  longString,
  deep,
  polluting,
  fc.constantFrom(undefined, null, true, Symbol('s'), () => 1, Object.create(null) as unknown, {
    polluted: true,
  }),
);

/** Text of every kind: ASCII, graphemes, lone surrogates, control characters, markers, megabytes. */
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', ' ', '\n\n', '\u0000', '\uFEFF', '\uD800', 'Human:', '\n\nAssistant:'),
  },
  { weight: 1, arbitrary: longString },
);
/** Mostly text, sometimes a wrong type. */
const textish = fc.oneof(
  { weight: 8, arbitrary: text },
  { weight: 1, arbitrary: garbage },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined, 0, [], {}, ['text']) },
);

/**
 * Objects with the given fields (some dropped now and then) plus a few extra keys — dangerous ones,
 * random ones, a long one — built with Object.fromEntries, as JSON.parse would build them.
 */
function rowOf(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(fields);
  const dropped = fc.oneof(
    { weight: 4, arbitrary: fc.constant<string[]>([]) },
    { weight: 1, arbitrary: fc.subarray(keys, { minLength: 1 }) },
  );
  const extraKey = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...DANGEROUS_KEYS) },
    { weight: 2, arbitrary: fc.string({ maxLength: 8 }) },
    { weight: 1, arbitrary: fc.constant('k'.repeat(100_000)) },
  );
  const extras = fc.oneof(
    { weight: 2, arbitrary: fc.constant<[string, unknown][]>([]) },
    { weight: 1, arbitrary: fc.array(fc.tuple(extraKey, garbage), { maxLength: 3 }) },
  );
  return fc.tuple(fc.record(fields), dropped, extras, fc.boolean()).map(([base, drop, more, extrasFirst]) => {
    const own = Object.entries(base).filter(([k]) => !drop.includes(k));
    return Object.fromEntries(extrasFirst ? [...more, ...own] : [...own, ...more]);
  });
}

/** Any row for a format: mostly its own shape, sometimes anything at all. */
function anyRow(shaped: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 8, arbitrary: shaped }, { weight: 2, arbitrary: garbage });
}

/** Where rows come from: plain names, spaces, Windows separators, non-ASCII; lines up to ten million. */
const location: fc.Arbitrary<RowLocation> = fc.record({
  file: fc.constantFrom(
    'prefs.jsonl',
    '/data/run 1/prefs.jsonl.gz',
    'C:\\data\\sft.jsonl',
    'données/é.jsonl',
  ),
  line: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 10_000_000 })),
});

// ------------------------------------------------------------------ checks

const prototypeNames = Object.getOwnPropertyNames(Object.prototype).sort();
function expectPrototypesUntouched(): void {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeNames);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
}

/** A DataError at `file` (and `line`, and `field` when given), with a hint and a readable message. */
function expectDataError(
  error: unknown,
  at: { file: string; line?: number; field?: string | undefined },
  options: { field?: 'any' | 'none' | 'exact' } = {},
): DataError {
  if (!(error instanceof DataError)) throw error; // the original exception, with its stack
  expect(error.code).toBe('E_DATA');
  expect(error.location?.file).toBe(at.file);
  if (at.line !== undefined) {
    expect(error.location?.line).toBe(at.line);
    expect(error.message.startsWith(`${at.file}:${at.line}`)).toBe(true);
  } else {
    expect(error.message.startsWith(at.file)).toBe(true);
  }
  const field = options.field ?? 'exact';
  if (field === 'exact') expect(error.location?.field).toBe(at.field);
  if (field === 'none') expect(error.location?.field).toBeUndefined();
  expect(error.hint).toBeTruthy();
  expect(error.message.length).toBeLessThan(MAX_MESSAGE);
  return error;
}

/** The normalised shape every example has, whatever the format. */
function expectNormalised(example: Example, loc: RowLocation, source: string): void {
  expect(example.id).toBe(`${basename(loc.file)}:${loc.line}`);
  expect(typeof example.prompt.instruction).toBe('string');
  expect(typeof example.prompt.input).toBe('string');
  expect(example.meta?.source).toBe(source);
  expect(example.meta?.line).toBe(loc.line);
  if (isPreferencePair(example)) {
    expect(typeof example.chosen).toBe('string');
    expect(typeof example.rejected).toBe('string');
    if (example.tie !== undefined) expect(example.tie).toBe(true);
  } else {
    expect(typeof example.response).toBe('string');
  }
}

// ------------------------------------------------------------------ 1. the formats, one row at a time

/** What a model of a format expects: this example, or a DataError naming this field (undefined: the row). */
type Outcome = { readonly ok: Example } | { readonly field: string | undefined };

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
const optionalText = (v: unknown): v is string | null | undefined =>
  v === undefined || v === null || typeof v === 'string';
const idOf = (loc: RowLocation): string => `${basename(loc.file)}:${loc.line}`;

function alpacaModel(row: unknown, loc: RowLocation): Outcome {
  if (!isRecord(row)) return { field: undefined };
  const { instruction, input, output_1: a, output_2: b, preference: p } = row;
  if (typeof instruction !== 'string') return { field: 'instruction' };
  if (!optionalText(input)) return { field: 'input' };
  if (typeof a !== 'string') return { field: 'output_1' };
  if (typeof b !== 'string') return { field: 'output_2' };
  if (typeof p !== 'number' || ![1, 2, 0, 1.5].includes(p)) return { field: 'preference' };
  const base = { id: idOf(loc), prompt: { instruction, input: input ?? '' } };
  const meta = { source: 'alpaca-farm', line: loc.line, label: p };
  if (p === 2) return { ok: { ...base, chosen: b, rejected: a, meta } };
  if (p === 1) return { ok: { ...base, chosen: a, rejected: b, meta } };
  return { ok: { ...base, chosen: a, rejected: b, tie: true, meta } };
}

function sftModel(row: unknown, loc: RowLocation): Outcome {
  if (!isRecord(row)) return { field: undefined };
  const { instruction, input, output } = row;
  if (typeof instruction !== 'string') return { field: 'instruction' };
  if (!optionalText(input)) return { field: 'input' };
  if (typeof output !== 'string') return { field: 'output' };
  return {
    ok: {
      id: idOf(loc),
      prompt: { instruction, input: input ?? '' },
      response: output,
      meta: { source: 'sft', line: loc.line },
    },
  };
}

/** Role labels, looked up as own keys only. */
const LABELS: Record<string, string> = {
  user: 'Human',
  human: 'Human',
  assistant: 'Assistant',
  system: 'System',
};
const labelOf = (role: string): string => (Object.hasOwn(LABELS, role) ? LABELS[role]! : role);

function conversationModel(turns: readonly Turn[]): string {
  if (turns.length === 1 && labelOf(turns[0]!.role) === 'Human') return turns[0]!.content;
  return turns.map((t) => `${labelOf(t.role)}: ${t.content}`).join('\n\n');
}

/** A message list, or the path of its first bad element; every index is visited, holes included. */
function turnsModel(value: unknown, field: string): Turn[] | string {
  if (!Array.isArray(value) || value.length === 0) return field;
  const out: Turn[] = [];
  for (let i = 0; i < value.length; i++) {
    const m: unknown = value[i];
    const at = `${field}[${i}]`;
    if (!isRecord(m)) return at;
    if (typeof m.role !== 'string') return `${at}.role`;
    if (typeof m.content !== 'string') return `${at}.content`;
    out.push({ role: m.role, content: m.content });
  }
  return out;
}

function responseModel(value: unknown, field: string): { text: string } | { field: string } {
  if (typeof value === 'string') return { text: value };
  const turns = turnsModel(value, field);
  if (typeof turns === 'string') return { field: turns };
  if (turns.every((t) => t.role === 'assistant')) return { text: turns.map((t) => t.content).join('\n\n') };
  return { text: conversationModel(turns) };
}

function trlModel(row: unknown, loc: RowLocation): Outcome {
  if (!isRecord(row)) return { field: undefined };
  const meta = { source: 'trl', line: loc.line };
  if ('prompt' in row) {
    let instruction: string;
    if (typeof row.prompt === 'string') instruction = row.prompt;
    else {
      const turns = turnsModel(row.prompt, 'prompt');
      if (typeof turns === 'string') return { field: turns };
      instruction = conversationModel(turns);
    }
    const chosen = responseModel(row.chosen, 'chosen');
    if ('field' in chosen) return chosen;
    const rejected = responseModel(row.rejected, 'rejected');
    if ('field' in rejected) return rejected;
    return {
      ok: {
        id: idOf(loc),
        prompt: { instruction, input: '' },
        chosen: chosen.text,
        rejected: rejected.text,
        meta,
      },
    };
  }
  const c = turnsModel(row.chosen, 'chosen');
  if (typeof c === 'string') return { field: c };
  const j = turnsModel(row.rejected, 'rejected');
  if (typeof j === 'string') return { field: j };
  // The prompt: the longest run of equal leading turns that leaves each side at least one turn.
  let k = 0;
  while (k < Math.min(c.length, j.length) - 1 && c[k]!.role === j[k]!.role && c[k]!.content === j[k]!.content)
    k++;
  if (k === 0) return { field: 'chosen' };
  const chosen = responseModel(c.slice(k), 'chosen') as { text: string };
  const rejected = responseModel(j.slice(k), 'rejected') as { text: string };
  return {
    ok: {
      id: idOf(loc),
      prompt: { instruction: conversationModel(c.slice(0, k)), input: '' },
      chosen: chosen.text,
      rejected: rejected.text,
      meta,
    },
  };
}

const HUMAN = '\n\nHuman:';
const ASSISTANT = '\n\nAssistant:';

/** Turns of a transcript, scanning left to right for the next marker (text before the first is not a turn). */
function transcriptModel(transcript: string): Turn[] {
  const s = `\n\n${transcript.trimStart()}`;
  const marks: { at: number; end: number; role: string }[] = [];
  let from = 0;
  while (true) {
    const h = s.indexOf(HUMAN, from);
    const a = s.indexOf(ASSISTANT, from);
    if (h < 0 && a < 0) break;
    const human = h >= 0 && (a < 0 || h < a);
    const at = human ? h : a;
    const end = at + (human ? HUMAN.length : ASSISTANT.length);
    marks.push({ at, end, role: human ? 'user' : 'assistant' });
    from = end;
  }
  return marks.map((m, i) => ({
    role: m.role,
    content: s.slice(m.end, marks[i + 1]?.at ?? s.length).trim(),
  }));
}

/**
 * HH-RLHF: the prompt is the shared transcript up to the last `\n\nAssistant:` both transcripts share,
 * and it must open with a Human turn; each answer is the rest of its transcript, trimmed.
 */
function hhModel(row: unknown, loc: RowLocation): Outcome {
  if (!isRecord(row)) return { field: undefined };
  const { chosen: c, rejected: j } = row;
  if (typeof c !== 'string') return { field: 'chosen' };
  if (typeof j !== 'string') return { field: 'rejected' };
  let common = 0;
  while (common < c.length && common < j.length && c[common] === j[common]) common++;
  let cut = -1;
  for (
    let i = c.indexOf(ASSISTANT);
    i >= 0 && i + ASSISTANT.length <= common;
    i = c.indexOf(ASSISTANT, i + 1)
  )
    cut = i;
  const head = c.slice(0, Math.max(cut, 0));
  if (cut < 0 || !head.trimStart().startsWith('Human:')) return { field: 'chosen' };
  const start = cut + ASSISTANT.length;
  return {
    ok: {
      id: idOf(loc),
      prompt: { instruction: conversationModel(transcriptModel(head)), input: '' },
      chosen: c.slice(start).trim(),
      rejected: j.slice(start).trim(),
      meta: { source: 'hh-rlhf', line: loc.line },
    },
  };
}

/** parse agrees with the model: the same example, or a DataError at loc naming the same field. */
function checkParse(format: DatasetFormat, model: (row: unknown, loc: RowLocation) => Outcome) {
  return (row: unknown, loc: RowLocation): void => {
    expect(typeof format.detect(row)).toBe('boolean');
    const expected = model(row, loc);
    let actual: Example;
    try {
      actual = format.parse(row, loc);
    } catch (error) {
      if ('ok' in expected) throw error;
      expectDataError(error, { ...loc, field: expected.field });
      expectPrototypesUntouched();
      return;
    }
    if (!('ok' in expected)) expect.fail(`parse accepted a row the model rejects at ${expected.field}`);
    expect(actual).toEqual(expected.ok);
    expectNormalised(actual, loc, format.name);
    expectPrototypesUntouched();
  };
}

const RUNS = { alpaca: 1500, sft: 1500, trlExplicit: 1500, trlImplicit: 1000, hh: 2000, cross: 500 };

const label = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 2, 0, 1.5) },
  { weight: 1, arbitrary: awkwardNumber },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom('1', '2', null, true, [1], { value: 1 }) },
  { weight: 1, arbitrary: garbage },
);
const alpacaRow = rowOf({
  instruction: textish,
  input: textish,
  output_1: textish,
  output_2: textish,
  preference: label,
});
const sftRow = rowOf({ instruction: textish, input: textish, output: textish });

const role = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('user', 'assistant', 'system', 'human') },
  { weight: 2, arbitrary: fc.constantFrom(...DANGEROUS_KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: garbage },
);
const message = fc.oneof(
  { weight: 6, arbitrary: fc.record({ role, content: text }) },
  { weight: 2, arbitrary: rowOf({ role, content: textish }) },
  { weight: 1, arbitrary: garbage },
);
const messages = fc.oneof(
  { weight: 6, arbitrary: fc.array(message, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.sparseArray(message, { maxLength: 5 }) },
);
const trlValue = fc.oneof(
  { weight: 3, arbitrary: text },
  { weight: 4, arbitrary: messages },
  { weight: 1, arbitrary: garbage },
);
const trlExplicitRow = rowOf({ prompt: trlValue, chosen: trlValue, rejected: trlValue });
/** Two conversations with shared leading turns and no prompt field: the implicit-prompt layout. */
const trlImplicitRow = fc
  .tuple(fc.array(message, { maxLength: 3 }), messages, messages, fc.boolean())
  .chain(([shared, c, j, sparse]) =>
    rowOf({
      chosen: fc.constant(sparse ? [...shared, ...c] : shared.concat(c)),
      rejected: fc.oneof(
        { weight: 4, arbitrary: fc.constant([...shared, ...j]) },
        { weight: 1, arbitrary: trlValue },
      ),
    }),
  );

const hhToken = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      HUMAN,
      ASSISTANT,
      `${HUMAN} `,
      `${ASSISTANT} `,
      'Human:',
      'Assistant:',
      '\n\nHuman',
      '\n\nAssistant',
      '\nHuman:',
      '\n\n',
      '\n',
      ' ',
      '\t',
      '\u00a0',
      ':',
      `${HUMAN}${ASSISTANT}`,
    ),
  },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
);
const transcript = fc.array(hhToken, { maxLength: 10 }).map((parts) => parts.join(''));
/** A well-formed conversation prefix: Human, then Assistant/Human pairs, ending with the Assistant marker. */
const hhPrefix = fc
  .tuple(fc.constantFrom('', '\n\n', ' \n'), text, fc.array(fc.tuple(text, text), { maxLength: 2 }))
  .map(
    ([lead, first, more]) =>
      `${lead}Human: ${first}${more.map(([a, h]) => `${ASSISTANT} ${a}${HUMAN} ${h}`).join('')}${ASSISTANT}`,
  );
const hhRow = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(hhPrefix, transcript, transcript)
      .map(([prefix, a, b]) => ({ chosen: prefix + a, rejected: prefix + b })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(transcript, transcript, transcript)
      .map(([shared, a, b]) => ({ chosen: shared + a, rejected: shared + b })),
  },
  {
    weight: 1,
    arbitrary: rowOf({ chosen: fc.oneof(transcript, textish), rejected: fc.oneof(transcript, textish) }),
  },
);

describe('1. every DatasetFormat.parse on its own: a valid example or a DataError at file:line (field)', () => {
  it(`alpaca-farm (${RUNS.alpaca} rows)`, () => {
    fc.assert(fc.property(anyRow(alpacaRow), location, checkParse(alpacaFarmFormat, alpacaModel)), {
      numRuns: RUNS.alpaca,
      seed: 9101,
    });
  });

  it(`sft (${RUNS.sft} rows)`, () => {
    fc.assert(fc.property(anyRow(sftRow), location, checkParse(sftFormat, sftModel)), {
      numRuns: RUNS.sft,
      seed: 9102,
    });
  });

  it(`trl with a prompt field: text and messages (${RUNS.trlExplicit} rows)`, () => {
    fc.assert(fc.property(anyRow(trlExplicitRow), location, checkParse(trlFormat, trlModel)), {
      numRuns: RUNS.trlExplicit,
      seed: 9103,
    });
  });

  it(`trl with an implicit prompt: two conversations (${RUNS.trlImplicit} rows)`, () => {
    fc.assert(fc.property(anyRow(trlImplicitRow), location, checkParse(trlFormat, trlModel)), {
      numRuns: RUNS.trlImplicit,
      seed: 9104,
    });
  });

  it(`hh-rlhf transcripts, well-formed and broken (${RUNS.hh} rows)`, () => {
    fc.assert(fc.property(anyRow(hhRow), location, checkParse(hhRlhfFormat, hhModel)), {
      numRuns: RUNS.hh,
      seed: 9105,
    });
  });

  it(`every built-in format on rows shaped for the others (${RUNS.cross} rows × 4 formats)`, () => {
    const models: Record<string, (row: unknown, loc: RowLocation) => Outcome> = {
      'alpaca-farm': alpacaModel,
      trl: trlModel,
      'hh-rlhf': hhModel,
      sft: sftModel,
    };
    const row = fc.oneof(alpacaRow, sftRow, trlExplicitRow, trlImplicitRow, hhRow);
    fc.assert(
      fc.property(row, location, (r, loc) => {
        for (const format of builtinFormats) checkParse(format, models[format.name]!)(r, loc);
      }),
      { numRuns: RUNS.cross, seed: 9106 },
    );
  });
});

// ------------------------------------------------------------------ 2. whole files

const dir = mkdtempSync(join(tmpdir(), 'quorum-data-props-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  expectPrototypesUntouched();
});
let fileCount = 0;
function writeData(bytes: Uint8Array, ext: '.jsonl' | '.jsonl.gz'): string {
  const path = join(dir, `f${fileCount++}${ext}`);
  writeFileSync(path, bytes);
  return path;
}

/** A load that neither resolves nor rejects within 10 s is a hang: fail with the file's name. */
async function settle<T>(promise: Promise<T>, path: string): Promise<{ value: T } | { error: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`load of ${path} hung`)), 10_000);
  });
  try {
    return { value: await Promise.race([promise, hang]) };
  } catch (error) {
    if (error instanceof Error && error.message.endsWith('hung')) throw error;
    return { error };
  } finally {
    clearTimeout(timer);
  }
}

type Kind = 'valid' | 'tie' | 'bad' | 'blank';
interface Line {
  readonly bytes: Buffer;
  readonly kind: Kind;
}
const line = (t: string, kind: Kind): Line => ({ bytes: Buffer.from(t, 'utf8'), kind });

/** Invalid UTF-8: stray continuation, truncated sequences, a UTF-16 surrogate, overlong, beyond U+10FFFF. */
const badUtf8 = fc
  .constantFrom(
    [0xff],
    [0x80],
    [0xc3],
    [0xe2, 0x82],
    [0xed, 0xa0, 0x80],
    [0xc0, 0xaf],
    [0xf4, 0x90, 0x80, 0x80],
  )
  .map((b) => Buffer.from(b));

/** Row text for files: no megabytes here (files stay small), but every kind of character. */
const rowText = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '\r\n', '\u2028', '\uFEFF', '"}\n{"', '\\') },
);

/** Valid rows of one format as objects; every layout ends with a string field (bytes go in there). */
const validRows: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  'alpaca-farm': fc
    .record({
      preference: fc.constantFrom(1, 2),
      instruction: rowText,
      input: fc.option(rowText, { nil: undefined }),
      output_1: rowText,
      output_2: rowText,
    })
    .map(({ input, ...rest }) => ({ ...(input === undefined ? {} : { input }), ...rest })),
  trl: fc.record({ prompt: rowText, chosen: rowText, rejected: rowText }),
  'hh-rlhf': fc.tuple(rowText, rowText, rowText).map(([h, a, b]) => ({
    chosen: `\n\nHuman: ${h}${ASSISTANT} ${a}`,
    rejected: `\n\nHuman: ${h}${ASSISTANT} ${b}`,
  })),
  sft: fc
    .record({ instruction: rowText, input: fc.option(rowText, { nil: undefined }), output: rowText })
    .map(({ input, ...rest }) => ({ ...(input === undefined ? {} : { input }), ...rest })),
};

/** Rows of one format with one thing wrong: a missing field, a wrong type, a bad label, no Human turn. */
const brokenRows: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  'alpaca-farm': fc.oneof(
    validRows['alpaca-farm']!.map((r) => ({ ...r, preference: 3 })),
    validRows['alpaca-farm']!.map((r) => ({ ...r, preference: '1' })),
    validRows['alpaca-farm']!.map(({ output_2: _, ...r }) => r),
    validRows['alpaca-farm']!.map((r) => ({ ...r, instruction: 5 })),
  ),
  trl: fc.oneof(
    validRows.trl!.map((r) => ({ ...r, prompt: 7 })),
    validRows.trl!.map((r) => ({ ...r, chosen: [] })),
    validRows.trl!.map((r) => ({ ...r, rejected: [{ role: 'assistant' }] })),
    validRows.trl!.map(({ rejected: _, ...r }) => r),
  ),
  'hh-rlhf': fc.oneof(
    rowText.map((t) => ({ chosen: `junk${ASSISTANT} a${t}`, rejected: `junk${ASSISTANT} b${t}` })),
    rowText.map((t) => ({ chosen: `\n\nHuman: ${t}`, rejected: `\n\nHuman: ${t}` })),
    validRows['hh-rlhf']!.map((r) => ({ ...r, rejected: null })),
  ),
  sft: fc.oneof(
    validRows.sft!.map(({ output: _, ...r }) => r),
    validRows.sft!.map((r) => ({ ...r, output: ['x'] })),
    validRows.sft!.map((r) => ({ ...r, input: 0 })),
  ),
};

const notAnObject = fc.constantFrom('[]', '1', '"text"', 'null', 'true', '[{"instruction": "x"}]', '-0');
/** Objects of no format whose keys would flood a message: one huge key, five hundred keys. */
const manyKeys = fc.constantFrom(
  JSON.stringify({ ['k'.repeat(5000)]: 1 }),
  JSON.stringify(Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`key${i}`, i]))),
);
const notJson = fc
  .string({ maxLength: 30 })
  .map((s) => s.replace(/[\r\n]/g, ' '))
  .filter((s) => {
    if (s.replace(/^\uFEFF/, '').trim() === '') return false;
    try {
      return !isRecord(JSON.parse(s.replace(/^\uFEFF/, '')));
    } catch {
      return true;
    }
  });
const blank = fc.constantFrom('', ' ', '\t', '  \t ', '\uFEFF');

/** Tagged lines for one format: valid, valid with invalid UTF-8 inside a string, ties, bad ones, blanks. */
function taggedLine(format: string, long: boolean): fc.Arbitrary<Line> {
  const valid = validRows[format]!;
  const json = valid.map((r) => JSON.stringify(r));
  const withBadBytes = fc.tuple(json, badUtf8).map(([t, b]) => {
    // just before the closing quote of the last (string) field: a U+FFFD inside a string, still valid
    const end = Buffer.from(t.slice(0, -2), 'utf8');
    return { bytes: Buffer.concat([end, b, Buffer.from('"}')]), kind: 'valid' as const };
  });
  const arbs: { weight: number; arbitrary: fc.Arbitrary<Line> }[] = [
    { weight: 6, arbitrary: json.map((t) => line(t, 'valid')) },
    { weight: 1, arbitrary: json.map((t) => line(`\uFEFF${t}`, 'valid')) },
    { weight: 1, arbitrary: withBadBytes },
    { weight: 2, arbitrary: brokenRows[format]!.map((r) => line(JSON.stringify(r), 'bad')) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(json, fc.double({ min: 0, max: 1, maxExcluded: true }))
        .map(([t, f]) => line(t.slice(0, 1 + Math.floor(f * (t.length - 1))), 'bad')),
    },
    { weight: 1, arbitrary: notAnObject.map((t) => line(t, 'bad')) },
    { weight: 1, arbitrary: manyKeys.map((t) => line(t, 'bad')) },
    { weight: 1, arbitrary: notJson.map((t) => line(t, 'bad')) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(badUtf8, json)
        .map(([b, t]) => ({ bytes: Buffer.concat([b, Buffer.from(t)]), kind: 'bad' as const })),
    },
    { weight: 2, arbitrary: blank.map((t) => line(t, 'blank')) },
  ];
  if (format === 'alpaca-farm') {
    arbs.push({
      weight: 2,
      arbitrary: fc
        .tuple(valid, fc.constantFrom(0, 1.5))
        .map(([r, p]) => line(JSON.stringify({ ...r, preference: p }), 'tie')),
    });
  }
  if (long) {
    const size = fc.integer({ min: 65_000, max: 400_000 });
    arbs.push(
      {
        weight: 3,
        arbitrary: fc.tuple(valid, size).map(([r, n]) => {
          const last = Object.keys(r).at(-1)!;
          // appended to the last field: for hh-rlhf that is the answer, after the shared prefix
          return line(JSON.stringify({ ...r, [last]: `${r[last] as string}${'y'.repeat(n)}` }), 'valid');
        }),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(size, rowText)
          .map(([n, t]) => line(`{"instruction": "${'z'.repeat(n)}${t}`, 'bad')),
      },
    );
  }
  return fc.oneof(...arbs);
}

interface TaggedFile {
  readonly lines: readonly Line[];
  readonly bytes: Buffer;
}

/** Lines joined with LF or CRLF (chosen per line), with or without a BOM and a final newline. */
function taggedFile(
  format: string,
  options: { long?: boolean; maxLines?: number } = {},
): fc.Arbitrary<TaggedFile> {
  return fc
    .record({
      lines: fc.array(fc.tuple(taggedLine(format, options.long ?? false), fc.constantFrom('\n', '\r\n')), {
        maxLength: options.maxLines ?? 12,
      }),
      bom: fc.boolean(),
      finalNewline: fc.boolean(),
    })
    .map(({ lines, bom, finalNewline }) => {
      const parts: Buffer[] = bom ? [Buffer.from('\uFEFF')] : [];
      lines.forEach(([l, sep], i) => {
        parts.push(l.bytes);
        if (i < lines.length - 1 || finalNewline) parts.push(Buffer.from(sep));
      });
      return { lines: lines.map(([l]) => l), bytes: Buffer.concat(parts) };
    });
}

/** What a load must report, from the tags: which lines are kept, skipped, or are ties. */
interface Expected {
  readonly rows: number;
  readonly bad: readonly number[];
  readonly kept: readonly number[];
  readonly ties: number;
}
function expectedFromTags(lines: readonly Line[], ties: 'skip' | 'keep'): Expected {
  const at = (kind: Kind): number[] => lines.flatMap((l, i) => (l.kind === kind ? [i + 1] : []));
  const kept = lines.flatMap((l, i) =>
    l.kind === 'valid' || (l.kind === 'tie' && ties === 'keep') ? [i + 1] : [],
  );
  return {
    rows: lines.filter((l) => l.kind !== 'blank').length,
    bad: at('bad'),
    kept,
    ties: ties === 'skip' ? at('tie').length : 0,
  };
}

type Loader = (
  path: string,
  options: LoadOptions,
) => Promise<{ examples: readonly Example[]; stats: LoadStats }>;
const loaders: Record<'preference' | 'sft', Loader> = {
  preference: async (path, options) => {
    const { pairs, stats } = await loadPreferencePairs(path, options);
    return { examples: pairs, stats };
  },
  sft: async (path, options) => {
    const { examples, stats } = await loadSftExamples(path, options);
    return { examples, stats };
  },
};

/**
 * Loads `path` in both modes and checks the outcome against `expected`:
 *   skip  — kept lines in order, rows = kept + skipped + ties, the first `maxErrors` errors at the bad lines;
 *   throw — a DataError at file:line of the first bad row, or, with no bad row, the same examples.
 */
async function checkLoad(
  kind: 'preference' | 'sft',
  path: string,
  options: LoadOptions,
  expected: Expected,
  format?: string,
): Promise<void> {
  const load = loaders[kind];
  const skipped = await settle(load(path, { ...options, onError: 'skip' }), path);
  if ('error' in skipped) throw skipped.error;
  const { examples, stats } = skipped.value;
  expect(examples.map((e) => e.meta?.line)).toEqual(expected.kept);
  expect(examples.map((e) => e.id)).toEqual(expected.kept.map((n) => `${basename(path)}:${n}`));
  expect(stats.rows).toBe(expected.rows);
  expect(stats.skipped).toBe(expected.bad.length);
  expect(stats.ties).toBe(expected.ties);
  expect(stats.loaded).toBe(examples.length);
  expect(examples.length + stats.skipped + stats.ties).toBe(stats.rows);
  if (format !== undefined && examples.length > 0) expect(stats.format).toBe(format);
  const maxErrors = options.maxErrors ?? 10;
  expect(stats.errors.map((e) => e.location?.line)).toEqual(expected.bad.slice(0, maxErrors));
  for (const [i, error] of stats.errors.entries())
    expectDataError(error, { file: path, line: expected.bad[i]! }, { field: 'any' });
  for (const e of examples) {
    expect(typeof e.prompt.instruction).toBe('string');
    if (isPreferencePair(e)) expect(typeof e.chosen).toBe('string');
    else expect(typeof e.response).toBe('string');
  }

  const thrown = await settle(load(path, { ...options, onError: 'throw' }), path);
  if (expected.bad.length === 0) {
    if ('error' in thrown) throw thrown.error;
    expect(thrown.value.examples).toEqual(examples);
  } else {
    if ('value' in thrown) expect.fail(`onError 'throw' loaded ${path} despite bad line ${expected.bad[0]}`);
    else expectDataError(thrown.error, { file: path, line: expected.bad[0]! }, { field: 'any' });
  }
}

const PREFERENCE_FORMATS = ['alpaca-farm', 'trl', 'hh-rlhf'] as const;
const FILE_RUNS = { preference: 240, sft: 120, randomBytes: 200, truncated: 120, long: 24 };

const loadOptions = fc.record(
  { ties: fc.constantFrom<'skip' | 'keep'>('skip', 'keep'), maxErrors: fc.integer({ min: 0, max: 12 }) },
  { requiredKeys: [] },
);

/** A line-by-line oracle for files of random bytes: the loader's rules, written out on the decoded text. */
function oracle(bytes: Buffer, path: string, kind: 'preference' | 'sft', ties: 'skip' | 'keep'): Expected {
  const lines = bytes.toString('utf8').split(/\r\n|\n|\r/);
  let format: DatasetFormat | undefined;
  const bad: number[] = [];
  const kept: number[] = [];
  let rows = 0;
  let tieCount = 0;
  lines.forEach((raw, i) => {
    const n = i + 1;
    const t = raw.startsWith('\uFEFF') ? raw.slice(1) : raw;
    if (t.trim() === '') return;
    rows++;
    try {
      const value: unknown = JSON.parse(t);
      format ??= builtinFormats.find((f) => f.kind === kind && f.detect(value));
      if (format === undefined) throw new Error('no format');
      const example = format.parse(value, { file: path, line: n });
      if (isPreferencePair(example) && example.tie === true && ties === 'skip') tieCount++;
      else kept.push(n);
    } catch {
      bad.push(n);
    }
  });
  return { rows, bad, kept, ties: tieCount };
}

/** Random bytes, biased towards JSON punctuation, field names, line breaks, BOMs and invalid UTF-8. */
const randomBytes = fc
  .array(
    fc.oneof(
      { weight: 3, arbitrary: fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b)) },
      {
        weight: 4,
        arbitrary: fc
          .constantFrom(
            '\n',
            '\r\n',
            '\r',
            '{',
            '}',
            '"',
            ':',
            ',',
            '[',
            ']',
            ' ',
            '\\',
            '1',
            '2',
            '\uFEFF',
            '"chosen":',
            '"rejected":',
            '"prompt":',
            '"instruction":',
            '"output":',
            '"output_1":',
            '"output_2":',
            '"preference":',
            '"role":"user","content":',
            '"\\n\\nHuman: hi\\n\\nAssistant: a"',
          )
          .map((s) => Buffer.from(s)),
      },
      {
        weight: 2,
        arbitrary: fc
          .constantFrom(...Object.keys(validRows))
          .chain((f) => validRows[f]!)
          .map((r) => Buffer.from(`${JSON.stringify(r)}\n`)),
      },
      { weight: 1, arbitrary: badUtf8 },
    ),
    { maxLength: 40 },
  )
  .map((parts) => Buffer.concat(parts));

describe('2. loadPreferencePairs / loadSftExamples on whole files, onError throw and skip', () => {
  it(`preference files of mixed valid, tie, bad and blank lines; LF/CRLF, BOM, invalid UTF-8, gzip (${FILE_RUNS.preference} files)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...PREFERENCE_FORMATS).chain((format) =>
          fc.record({
            format: fc.constant(format),
            file: taggedFile(format),
            gz: fc.boolean(),
            options: loadOptions,
          }),
        ),
        async ({ format, file, gz, options }) => {
          const path = writeData(gz ? gzipSync(file.bytes) : file.bytes, gz ? '.jsonl.gz' : '.jsonl');
          const expected = expectedFromTags(file.lines, options.ties ?? 'skip');
          await checkLoad('preference', path, { ...options, format }, expected, format);
        },
      ),
      { numRuns: FILE_RUNS.preference, seed: 9201 },
    );
  });

  it(`SFT files, format named or detected (${FILE_RUNS.sft} files)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        taggedFile('sft'),
        fc.boolean(),
        fc.boolean(),
        loadOptions,
        async (file, gz, named, options) => {
          const path = writeData(gz ? gzipSync(file.bytes) : file.bytes, gz ? '.jsonl.gz' : '.jsonl');
          const expected = expectedFromTags(file.lines, 'skip');
          await checkLoad('sft', path, { ...options, ...(named ? { format: 'sft' } : {}) }, expected, 'sft');
        },
      ),
      { numRuns: FILE_RUNS.sft, seed: 9202 },
    );
  });

  it(`files of random bytes, plain and gzipped, format detected (${FILE_RUNS.randomBytes} files × 2 loaders)`, async () => {
    await fc.assert(
      fc.asyncProperty(randomBytes, fc.boolean(), loadOptions, async (bytes, gz, options) => {
        const path = writeData(gz ? gzipSync(bytes) : bytes, gz ? '.jsonl.gz' : '.jsonl');
        for (const kind of ['preference', 'sft'] as const) {
          await checkLoad(kind, path, options, oracle(bytes, path, kind, options.ties ?? 'skip'));
        }
      }),
      { numRuns: FILE_RUNS.randomBytes, seed: 9203 },
    );
  });

  it(`truncated gzip and bytes that are not gzip: a DataError naming the file, in both modes (${FILE_RUNS.truncated} files × 2 loaders)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...PREFERENCE_FORMATS).chain((f) => taggedFile(f, { maxLines: 40 })),
        fc.double({ min: 0, max: 1, maxExcluded: true }),
        fc.boolean(),
        async (file, cutAt, notGzip) => {
          const gz = gzipSync(file.bytes);
          const bytes = notGzip ? file.bytes : gz.subarray(0, Math.floor(cutAt * gz.length));
          const path = writeData(bytes, '.jsonl.gz');
          const firstBad = expectedFromTags(file.lines, 'skip').bad[0];
          for (const load of [loaders.preference, loaders.sft]) {
            for (const onError of ['skip', 'throw'] as const) {
              const outcome = await settle(load(path, { onError }), path);
              if ('value' in outcome) expect.fail(`${path} (${bytes.length} bytes) loaded without an error`);
              else {
                const error = expectDataError(outcome.error, { file: path }, { field: 'any' });
                // A stream error names the file only; in throw mode a bad row read before it may come first.
                if (error.location?.line !== undefined) {
                  expect(onError).toBe('throw');
                  if (load === loaders.preference) expect(error.location.line).toBe(firstBad);
                } else {
                  expect(error.message).toContain(`cannot read ${basename(path)}`);
                }
              }
            }
          }
        },
      ),
      { numRuns: FILE_RUNS.truncated, seed: 9204 },
    );
  });

  it(`very long lines (64 KB – 400 KB, across stream chunks) among short ones (${FILE_RUNS.long} files)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...PREFERENCE_FORMATS, 'sft').chain((format) =>
          fc.record({
            format: fc.constant(format),
            file: taggedFile(format, { long: true, maxLines: 6 }),
            gz: fc.boolean(),
          }),
        ),
        async ({ format, file, gz }) => {
          const path = writeData(gz ? gzipSync(file.bytes) : file.bytes, gz ? '.jsonl.gz' : '.jsonl');
          const kind = format === 'sft' ? 'sft' : 'preference';
          await checkLoad(kind, path, { format }, expectedFromTags(file.lines, 'skip'), format);
        },
      ),
      { numRuns: FILE_RUNS.long, seed: 9205 },
    );
  });
});

// ------------------------------------------------------------------ 3. template and collate

const tok = projectTokenizer();
const HEAD_IDS = tok.encode('### Instruction:\n');
const TAIL_IDS = tok.encode('\n\n### Response:\n');
const TEMPLATE_RUNS = { encode: 400, prompt: 200, collate: 300 };

/** Text for the template: any characters, template markers and special-token names, long words. */
const templateText = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 10 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      '### Response:\n',
      '<|endoftext|>',
      '<|pad|>',
      '\uFEFF',
      '\uD800x',
      '\n\n\n',
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .integer({ min: 1, max: 300 })
      .map((n) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ')),
  },
);
/** Lengths around every edge: the template's own size, zero, negatives, fractions, NaN, ±Infinity, huge. */
const fixedLength = HEAD_IDS.length + TAIL_IDS.length;
const maxLength = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: fixedLength - 2, max: fixedLength + 40 }) },
  { weight: 2, arbitrary: fc.integer({ min: -5, max: 600 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -0,
      0,
      2.5,
      1e9,
    ),
  },
);
const minInstructionTokens = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, -0, Number.NaN, 2.5, Number.POSITIVE_INFINITY, 1e9) },
);

function expectConfigError(error: unknown, fields: readonly string[]): void {
  if (!(error instanceof ConfigError)) throw error;
  expect(error.code).toBe('E_CONFIG');
  expect(fields).toContain(error.location?.field);
  expect(error.hint).toBeTruthy();
}

const same = (a: ArrayLike<number>, b: ArrayLike<number>): boolean =>
  a.length === b.length && Array.from(a).every((v, i) => v === b[i]);

describe('3. the prompt template and collation with arbitrary text and lengths', () => {
  it(`encodePromptResponse: ids within maxLength, cut by the rule, or a ConfigError (${TEMPLATE_RUNS.encode} runs)`, () => {
    fc.assert(
      fc.property(
        fc.record({ instruction: templateText, input: fc.oneof(fc.constant(''), templateText) }),
        templateText,
        maxLength,
        minInstructionTokens,
        fc.option(fc.boolean(), { nil: undefined }),
        (prompt, response, max, minInst, eos) => {
          const options = {
            maxLength: max,
            ...(minInst === undefined ? {} : { minInstructionTokens: minInst }),
            ...(eos === undefined ? {} : { eos }),
          };
          const eosIds = eos === false ? [] : [tok.eosId];
          const fixed = fixedLength + eosIds.length;
          const badMax = !Number.isInteger(max) || max <= fixed;
          const badMin =
            minInst !== undefined && !(minInst >= 0 && (Number.isInteger(minInst) || minInst === Infinity));
          let seq: ReturnType<typeof encodePromptResponse>;
          try {
            seq = encodePromptResponse(tok, prompt, response, options);
          } catch (error) {
            expectConfigError(error, [
              ...(badMax ? ['maxLength'] : []),
              ...(badMin ? ['minInstructionTokens'] : []),
            ]);
            return;
          }
          expect(badMax || badMin).toBe(false);
          const { ids, promptLength, responseLength, truncated } = seq;
          expect(ids).toBeInstanceOf(Int32Array);
          expect(ids.length).toBeLessThanOrEqual(max);
          expect(promptLength + responseLength).toBe(ids.length);
          for (const n of [promptLength, responseLength, truncated.prompt, truncated.response]) {
            expect(Number.isInteger(n) && n >= 0).toBe(true);
          }
          expect(ids.every((id) => id >= 0 && id < tok.vocabSize)).toBe(true);
          // head, the instruction body's first tokens, the response marker, the response's last tokens, eos
          const body = encodePrompt(tok, prompt).subarray(HEAD_IDS.length, -TAIL_IDS.length);
          const resp = tok.encode(response);
          const bodyLen = promptLength - fixedLength;
          const respLen = responseLength - eosIds.length;
          expect(bodyLen + truncated.prompt).toBe(body.length);
          expect(respLen + truncated.response).toBe(resp.length);
          expect(same(ids.subarray(0, HEAD_IDS.length), HEAD_IDS)).toBe(true);
          expect(
            same(ids.subarray(HEAD_IDS.length, HEAD_IDS.length + bodyLen), body.subarray(0, bodyLen)),
          ).toBe(true);
          expect(same(ids.subarray(promptLength - TAIL_IDS.length, promptLength), TAIL_IDS)).toBe(true);
          expect(
            same(ids.subarray(promptLength, promptLength + respLen), resp.subarray(resp.length - respLen)),
          ).toBe(true);
          expect(same(ids.subarray(ids.length - eosIds.length), eosIds)).toBe(true);
          if (fixed + body.length + resp.length <= max) expect(truncated).toEqual({ prompt: 0, response: 0 });
          else {
            expect(ids.length).toBe(max);
            // the instruction keeps its minimum before the response is cut
            const room = max - fixed;
            if (truncated.response > 0)
              expect(bodyLen).toBe(Math.min(body.length, minInst ?? 32, Math.floor(room / 2)));
          }
        },
      ),
      { numRuns: TEMPLATE_RUNS.encode, seed: 9301 },
    );
  });

  it(`encodePrompt: head, body start, response marker within maxLength, or a ConfigError (${TEMPLATE_RUNS.prompt} runs)`, () => {
    fc.assert(
      fc.property(
        fc.record({ instruction: templateText, input: fc.oneof(fc.constant(''), templateText) }),
        fc.option(maxLength, { nil: undefined }),
        (prompt, max) => {
          let ids: Int32Array;
          try {
            ids = encodePrompt(tok, prompt, max === undefined ? {} : { maxLength: max });
          } catch (error) {
            expect(max !== undefined && (!Number.isInteger(max) || max <= fixedLength)).toBe(true);
            expectConfigError(error, ['maxLength']);
            return;
          }
          if (max !== undefined) expect(ids.length).toBeLessThanOrEqual(max);
          expect(same(ids.subarray(0, HEAD_IDS.length), HEAD_IDS)).toBe(true);
          expect(same(ids.subarray(ids.length - TAIL_IDS.length), TAIL_IDS)).toBe(true);
          const full = encodePrompt(tok, prompt);
          expect(
            same(
              ids.subarray(0, ids.length - TAIL_IDS.length),
              full.subarray(0, ids.length - TAIL_IDS.length),
            ),
          ).toBe(true);
        },
      ),
      { numRuns: TEMPLATE_RUNS.prompt, seed: 9302 },
    );
  });

  it(`collate: a padded batch of the right shape, or a ConfigError (${TEMPLATE_RUNS.collate} runs)`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 60_000 }), { maxLength: 12 }), { maxLength: 6 }),
        fc.option(
          fc.oneof(
            fc.integer({ min: -2, max: 20 }),
            fc.constantFrom(Number.NaN, 2.5, Number.POSITIVE_INFINITY, -0, 1e12, 2 ** 31),
          ),
          { nil: undefined },
        ),
        fc.option(fc.constantFrom<'left' | 'right'>('left', 'right'), { nil: undefined }),
        fc.integer({ min: 0, max: 9 }),
        (seqs, length, padSide, padId) => {
          const longest = seqs.reduce((m, s) => Math.max(m, s.length), 0);
          const options = {
            padId,
            ...(length === undefined ? {} : { length }),
            ...(padSide === undefined ? {} : { padSide }),
          };
          let batch: ReturnType<typeof collate>;
          try {
            batch = collate(seqs, options);
          } catch (error) {
            const time = length ?? longest;
            const ok =
              seqs.length > 0 && Number.isInteger(time) && time >= longest && seqs.length * time <= 2 ** 28;
            expect(ok).toBe(false);
            expectConfigError(error, ['seqs', 'length']);
            return;
          }
          const time = length ?? longest;
          expect(batch.batch).toBe(seqs.length);
          expect(batch.time).toBe(time);
          expect(batch.ids.length).toBe(seqs.length * time);
          expect(batch.mask.length).toBe(seqs.length * time);
          const left = padSide === 'left';
          seqs.forEach((seq, b) => {
            const row = Array.from(batch.ids.subarray(b * time, (b + 1) * time));
            const mask = Array.from(batch.mask.subarray(b * time, (b + 1) * time));
            const pad = Array.from({ length: time - seq.length }, () => padId);
            const ones = seq.map(() => 1);
            const zeros = pad.map(() => 0);
            expect(row).toEqual(left ? [...pad, ...seq] : [...seq, ...pad]);
            expect(mask).toEqual(left ? [...zeros, ...ones] : [...ones, ...zeros]);
            expect(batch.lengths[b]).toBe(seq.length);
            expect(batch.lastIndex[b]).toBe(left ? time - 1 : seq.length - 1);
          });
        },
      ),
      { numRuns: TEMPLATE_RUNS.collate, seed: 9303 },
    );
  });
});
