/**
 * The `DatasetFormat` extension point: how one JSONL row becomes a normalised example. Built-ins:
 * `alpaca-farm`, `trl`, `hh-rlhf` (preference pairs) and `sft`. A plugin contributes another format
 * with `defineStrategy` + the `DatasetFormat` point.
 */
import { defineExtensionPoint, defineStrategy, type StrategyDefinition } from '@quorum/core';
import { z } from 'zod';
import { asObject, fieldError, numberField, optionalStringField, rowId, stringField } from './fields.js';
import type { PreferencePair, Prompt, RowLocation, SftExample } from './types.js';

/** Turns rows of one file layout into `PreferencePair`s (kind `preference`) or `SftExample`s (kind `sft`). */
export interface DatasetFormat {
  readonly name: string;
  readonly kind: 'preference' | 'sft';
  /** Called on the first row of a file when no format is named: does this row look like this format? */
  detect(row: unknown): boolean;
  /** Called for every row: the normalised example, or a DataError naming `loc` and the bad field. */
  parse(row: unknown, loc: RowLocation): PreferencePair | SftExample;
}

export const DatasetFormat = defineExtensionPoint<DatasetFormat>(
  'DatasetFormat',
  'dataset-format',
  'how rows of a JSONL file become preference pairs or SFT examples',
);

const isObject = (row: unknown): row is Record<string, unknown> =>
  row !== null && typeof row === 'object' && !Array.isArray(row);

/** One turn of a conversation. */
export interface Turn {
  readonly role: string;
  readonly content: string;
}

/** A Map, not an object literal: a role named `constructor` or `__proto__` must not find Object.prototype. */
const ROLE_LABEL: ReadonlyMap<string, string> = new Map([
  ['user', 'Human'],
  ['human', 'Human'],
  ['assistant', 'Assistant'],
  ['system', 'System'],
]);

/**
 * A conversation prefix as a prompt: a single user turn is the instruction itself; longer
 * conversations are written out as `Human: …\n\nAssistant: …` so the model sees every turn.
 */
export function conversationPrompt(turns: readonly Turn[]): Prompt {
  if (turns.length === 1 && ROLE_LABEL.get(turns[0]!.role) === 'Human')
    return { instruction: turns[0]!.content, input: '' };
  const text = turns.map((t) => `${ROLE_LABEL.get(t.role) ?? t.role}: ${t.content}`).join('\n\n');
  return { instruction: text, input: '' };
}

// ---------------------------------------------------------------- alpaca-farm

const ALPACA_EXAMPLE =
  '{"instruction": "...", "input": "", "output_1": "...", "output_2": "...", "preference": 1}';

export const alpacaFarmFormat: DatasetFormat = {
  name: 'alpaca-farm',
  kind: 'preference',
  detect: (row) => isObject(row) && 'output_1' in row && 'output_2' in row && 'preference' in row,
  parse(row, loc) {
    const r = asObject(row, loc, ALPACA_EXAMPLE);
    const prompt = {
      instruction: stringField(r, 'instruction', loc),
      input: optionalStringField(r, 'input', loc),
    };
    const a = stringField(r, 'output_1', loc);
    const b = stringField(r, 'output_2', loc);
    const label = numberField(r, 'preference', loc);
    if (label !== 1 && label !== 2 && label !== 0 && label !== 1.5) {
      throw fieldError(
        loc,
        'preference',
        `"preference" must be 1 or 2 (or 0 = draw, 1.5 = tie), got ${label}`,
        'write 1 when output_1 is preferred, 2 when output_2 is',
      );
    }
    const meta = { source: 'alpaca-farm', line: loc.line, label };
    if (label === 1) return { id: rowId(loc), prompt, chosen: a, rejected: b, meta };
    if (label === 2) return { id: rowId(loc), prompt, chosen: b, rejected: a, meta };
    return { id: rowId(loc), prompt, chosen: a, rejected: b, tie: true, meta };
  },
};

// ---------------------------------------------------------------- trl

function turns(value: unknown, field: string, loc: RowLocation): Turn[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw fieldError(
      loc,
      field,
      `"${field}" must be text or a non-empty list of {role, content}`,
      'see the TRL dataset formats',
    );
  }
  // Array.from visits holes of a sparse array (as undefined), where map would skip them.
  return Array.from(value as unknown[], (m, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(m))
      throw fieldError(
        loc,
        at,
        `${at} must be an object {role, content}`,
        'write {"role": "user", "content": "..."}',
      );
    if (typeof m.role !== 'string')
      throw fieldError(
        loc,
        `${at}.role`,
        `${at}.role must be a string`,
        'use "user", "assistant" or "system"',
      );
    if (typeof m.content !== 'string')
      throw fieldError(
        loc,
        `${at}.content`,
        `${at}.content must be a string`,
        'write the message text as a string',
      );
    return { role: m.role, content: m.content };
  });
}

function responseText(value: unknown, field: string, loc: RowLocation): string {
  if (typeof value === 'string') return value;
  const ts = turns(value, field, loc);
  if (ts.every((t) => t.role === 'assistant')) return ts.map((t) => t.content).join('\n\n');
  return conversationPrompt(ts).instruction;
}

const sameTurn = (a: Turn, b: Turn): boolean => a.role === b.role && a.content === b.content;

export const trlFormat: DatasetFormat = {
  name: 'trl',
  kind: 'preference',
  detect: (row) =>
    isObject(row) &&
    'chosen' in row &&
    'rejected' in row &&
    ('prompt' in row || (Array.isArray(row.chosen) && Array.isArray(row.rejected))),
  parse(row, loc) {
    const r = asObject(row, loc, '{"prompt": "...", "chosen": "...", "rejected": "..."}');
    const meta = { source: 'trl', line: loc.line };
    if ('prompt' in r) {
      const prompt =
        typeof r.prompt === 'string'
          ? { instruction: r.prompt, input: '' }
          : conversationPrompt(turns(r.prompt, 'prompt', loc));
      return {
        id: rowId(loc),
        prompt,
        chosen: responseText(r.chosen, 'chosen', loc),
        rejected: responseText(r.rejected, 'rejected', loc),
        meta,
      };
    }
    // Implicit prompt: two whole conversations; their shared leading turns are the prompt.
    const c = turns(r.chosen, 'chosen', loc);
    const j = turns(r.rejected, 'rejected', loc);
    let k = 0;
    while (k < c.length - 1 && k < j.length - 1 && sameTurn(c[k]!, j[k]!)) k++;
    if (k === 0)
      throw fieldError(
        loc,
        'chosen',
        'chosen and rejected share no prompt turns',
        'add a "prompt" field, or start both conversations with the same user turn',
      );
    const prompt = conversationPrompt(c.slice(0, k));
    return {
      id: rowId(loc),
      prompt,
      chosen: responseText(c.slice(k), 'chosen', loc),
      rejected: responseText(j.slice(k), 'rejected', loc),
      meta,
    };
  },
};

// ---------------------------------------------------------------- hh-rlhf

const ASSISTANT = '\n\nAssistant:';

/** Splits an HH-RLHF transcript into turns (`\n\nHuman:` / `\n\nAssistant:` markers). */
export function transcriptTurns(text: string): Turn[] {
  const parts = `\n\n${text.replace(/^\s+/, '')}`.split(/\n\n(Human|Assistant):/);
  const out: Turn[] = [];
  for (let i = 1; i + 1 < parts.length; i += 2) {
    out.push({ role: parts[i] === 'Human' ? 'user' : 'assistant', content: parts[i + 1]!.trim() });
  }
  return out;
}

export const hhRlhfFormat: DatasetFormat = {
  name: 'hh-rlhf',
  kind: 'preference',
  detect: (row) =>
    isObject(row) &&
    !('prompt' in row) &&
    typeof row.chosen === 'string' &&
    typeof row.rejected === 'string' &&
    /(^|\n\n)Human:/.test(row.chosen),
  parse(row, loc) {
    const r = asObject(row, loc, '{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": "..."}');
    const chosen = stringField(r, 'chosen', loc);
    const rejected = stringField(r, 'rejected', loc);
    let common = 0;
    while (common < chosen.length && chosen[common] === rejected[common]) common++;
    const cut = common < ASSISTANT.length ? -1 : chosen.lastIndexOf(ASSISTANT, common - ASSISTANT.length);
    // The prompt must open with a Human turn: text before it (or no Human turn at all) would be dropped.
    if (cut < 0 || !/^\s*Human:/.test(chosen.slice(0, cut))) {
      throw fieldError(
        loc,
        'chosen',
        'chosen and rejected share no "\\n\\nHuman: … \\n\\nAssistant:" prefix',
        'both transcripts must start with the same conversation and differ only in the last Assistant turn',
      );
    }
    const prompt = conversationPrompt(transcriptTurns(chosen.slice(0, cut)));
    const start = cut + ASSISTANT.length;
    const meta = { source: 'hh-rlhf', line: loc.line };
    return {
      id: rowId(loc),
      prompt,
      chosen: chosen.slice(start).trim(),
      rejected: rejected.slice(start).trim(),
      meta,
    };
  },
};

// ---------------------------------------------------------------- sft

export const sftFormat: DatasetFormat = {
  name: 'sft',
  kind: 'sft',
  detect: (row) => isObject(row) && 'instruction' in row && 'output' in row,
  parse(row, loc) {
    const r = asObject(row, loc, '{"instruction": "...", "input": "", "output": "..."}');
    const prompt = {
      instruction: stringField(r, 'instruction', loc),
      input: optionalStringField(r, 'input', loc),
    };
    return {
      id: rowId(loc),
      prompt,
      response: stringField(r, 'output', loc),
      meta: { source: 'sft', line: loc.line },
    };
  },
};

/** Built-ins in detection order (the most specific layout first). */
export const builtinFormats: readonly DatasetFormat[] = [
  alpacaFarmFormat,
  trlFormat,
  hhRlhfFormat,
  sftFormat,
];

const descriptions: Record<string, string> = {
  'alpaca-farm': '{instruction, input, output_1, output_2, preference: 1|2} (0 draw, 1.5 tie kept as ties)',
  trl: '{prompt, chosen, rejected} as text or {role, content} messages; implicit prompt also read',
  'hh-rlhf':
    '{chosen, rejected} "\\n\\nHuman: … \\n\\nAssistant: …" transcripts; the shared prefix is the prompt',
  sft: '{instruction, input, output} supervised fine-tuning rows',
};

/** The built-in formats as strategies of the `dataset-format` point (no options). */
export const builtinFormatDefinitions: readonly StrategyDefinition<DatasetFormat, z.ZodType>[] =
  builtinFormats.map((format) =>
    defineStrategy({
      name: format.name,
      description: descriptions[format.name] ?? format.name,
      source: '@quorum/data',
      options: z.object({}).strict(),
      create: () => format,
    }),
  );
