/**
 * Candidate pools for offline Best-of-n and prompt lists for online Best-of-n: the shipped AlpacaEval
 * pools, or a user's JSONL file.
 *
 * Pool file: one candidate per line, `{"instruction": "...", "input"?: "...", "output": "...",
 * "gold"?: "win" | "loss" | "draw", "generator"?: "...", "reference"?: "..."}`. Rows with the same
 * instruction and input form one pool (pools keep the order of their first row). Either every row has
 * `gold` or none does. `reference` is the answer the gold verdicts compare against (its length gives the
 * length-controlled win rate); rows of one pool that give it must give the same text.
 *
 * Prompt file: one prompt per line, `{"instruction": "...", "input"?: "..."}`.
 */
import { basename } from 'node:path';
import { DataError, describeValue } from '@quorum/core';
import { type CandidatePool, type Prompt, readJsonl } from '@quorum/data';
import type { GoldLabel } from './estimator.js';

/** One pre-generated answer in a pool. */
export interface PoolCandidate {
  readonly output: string;
  /** Verdict against the reference; needed by the estimator, not by selection. */
  readonly gold?: GoldLabel | undefined;
  /** Who wrote the answer, when known (AlpacaEval: the model name). */
  readonly generator?: string | undefined;
}

/** The answers to one prompt that offline Best-of-n chooses among. */
export interface Pool {
  /** Stable id: `alpaca-eval/<instruction id>` or `<file>:<first line>`. */
  readonly id: string;
  readonly prompt: Prompt;
  readonly candidates: readonly PoolCandidate[];
  /**
   * The reference answer the gold verdicts compare against (AlpacaEval: text-davinci-003), when known:
   * the length-controlled win rate needs its length.
   */
  readonly reference?: string | undefined;
}

/** The shipped AlpacaEval pools (`(await datasets.alpacaEval()).candidatePools('eval')`) as `Pool`s. */
export function poolsFromAlpacaEval(pools: readonly CandidatePool[]): Pool[] {
  return pools.map((p) => ({
    id: `alpaca-eval/${p.instructionId}`,
    prompt: p.prompt,
    candidates: p.candidates.map((c) => ({ output: c.output, gold: c.gold, generator: c.generator })),
    ...(p.reference === '' ? {} : { reference: p.reference }),
  }));
}

const POOL_EXAMPLE = '{"instruction": "Name a prime.", "output": "7", "gold": "win"}';
const PROMPT_EXAMPLE = '{"instruction": "Name a prime.", "input": ""}';
const GOLDS: readonly string[] = ['win', 'loss', 'draw'];

function rowObject(value: unknown, file: string, line: number, example: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DataError(`expected a JSON object, got ${describeValue(value)}`, {
      location: { file, line },
      hint: `each line must be an object like ${example}`,
    });
  }
  return value as Record<string, unknown>;
}

interface TextRule {
  /** Absent or null reads as ''. */
  readonly optional?: boolean;
  /** Blank text is an error. */
  readonly nonEmpty?: boolean;
}

function text(
  row: Record<string, unknown>,
  field: string,
  file: string,
  line: number,
  rule: TextRule = {},
): string {
  const value = row[field];
  const fail = (message: string): DataError =>
    new DataError(message, {
      location: { file, line, field },
      hint: `write "${field}": "<text>"${rule.optional === true ? ', or leave it out' : ''}`,
    });
  if (value === undefined || value === null) {
    if (rule.optional === true) return '';
    throw fail(`missing field "${field}"`);
  }
  if (typeof value !== 'string') throw fail(`"${field}" must be a string, got ${describeValue(value)}`);
  if (rule.nonEmpty === true && value.trim() === '') throw fail(`"${field}" is empty`);
  return value;
}

/** Reads a pool file (format in this file's header); errors name file, line and field. */
export async function readPoolFile(file: string): Promise<Pool[]> {
  const pools = new Map<
    string,
    { id: string; prompt: Prompt; candidates: PoolCandidate[]; reference?: string }
  >();
  let withGold: boolean | undefined;
  for await (const { value, line } of readJsonl(file)) {
    const row = rowObject(value, file, line, POOL_EXAMPLE);
    const instruction = text(row, 'instruction', file, line, { nonEmpty: true });
    const input = text(row, 'input', file, line, { optional: true });
    const output = text(row, 'output', file, line);
    const generator = row.generator === undefined ? undefined : text(row, 'generator', file, line);
    const g = row.gold;
    if (g !== undefined && (typeof g !== 'string' || !GOLDS.includes(g))) {
      throw new DataError(`"gold" must be "win", "loss" or "draw", got ${describeValue(g)}`, {
        location: { file, line, field: 'gold' },
        hint: 'the verdict of this answer against the reference answer; leave it out when unknown',
      });
    }
    if (withGold === undefined) withGold = g !== undefined;
    else if (withGold !== (g !== undefined)) {
      throw new DataError(
        withGold
          ? 'missing field "gold" (earlier rows have one)'
          : '"gold" given, but earlier rows have none',
        {
          location: { file, line, field: 'gold' },
          hint: 'give "gold" on every row (for win rates) or on none (selection only)',
        },
      );
    }
    const key = `${instruction}\u0000${input}`;
    let pool = pools.get(key);
    if (pool === undefined) {
      pool = { id: `${basename(file)}:${line}`, prompt: { instruction, input }, candidates: [] };
      pools.set(key, pool);
    }
    if (row.reference !== undefined && row.reference !== null) {
      const reference = text(row, 'reference', file, line);
      if (pool.reference !== undefined && pool.reference !== reference) {
        throw new DataError('"reference" differs from an earlier row of the same instruction', {
          location: { file, line, field: 'reference' },
          hint: 'give one reference answer per instruction (or leave it out on the other rows)',
        });
      }
      pool.reference = reference;
    }
    pool.candidates.push({ output, gold: g as GoldLabel | undefined, generator });
  }
  if (pools.size === 0) {
    throw new DataError('the file holds no candidates', {
      location: { file },
      hint: `write one candidate per line, e.g. ${POOL_EXAMPLE}`,
    });
  }
  return [...pools.values()];
}

/** Reads a prompt file (format in this file's header); errors name file, line and field. */
export async function readPromptFile(file: string): Promise<Prompt[]> {
  const out: Prompt[] = [];
  for await (const { value, line } of readJsonl(file)) {
    const row = rowObject(value, file, line, PROMPT_EXAMPLE);
    out.push({
      instruction: text(row, 'instruction', file, line, { nonEmpty: true }),
      input: text(row, 'input', file, line, { optional: true }),
    });
  }
  if (out.length === 0) {
    throw new DataError('the file holds no prompts', {
      location: { file },
      hint: `write one prompt per line, e.g. ${PROMPT_EXAMPLE}`,
    });
  }
  return out;
}
