/** The shipped MT-Bench questions (80, two turns each), GPT-4 reference answers and judge prompts. */
import { describeValue } from '@quorum/core';
import { asObject, fieldError, numberField, stringField } from './fields.js';
import { readJsonl } from './jsonl.js';
import { datasetPath } from './paths.js';
import type { RowLocation } from './types.js';

export interface MtBenchQuestion {
  readonly id: number;
  readonly category: string;
  /** The first and the follow-up user turn. */
  readonly turns: readonly string[];
  /** Reference answers per turn (math, reasoning, coding and a few others), when there are any. */
  readonly reference?: readonly string[];
}

export interface JudgePrompt {
  readonly name: string;
  readonly type: 'pairwise' | 'single';
  readonly category: string;
  readonly description: string;
  readonly systemPrompt: string;
  /** Template with `{question}`, `{answer}` / `{answer_a}`, `{answer_b}`, `{ref_answer_1}` … placeholders. */
  readonly promptTemplate: string;
  /** How the verdict is written, e.g. `[[A]]` or `[[rating]]`. */
  readonly outputFormat: string;
}

export interface MtBenchData {
  readonly questions: readonly MtBenchQuestion[];
  readonly judgePrompts: readonly JudgePrompt[];
}

function stringList(value: unknown, field: string, loc: RowLocation): string[] {
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  throw fieldError(
    loc,
    field,
    `"${field}" must be a list of strings, got ${describeValue(value)}`,
    're-copy the shipped file',
  );
}

async function loadMtBench(): Promise<MtBenchData> {
  const references = new Map<number, string[]>();
  const refFile = datasetPath('mt_bench/reference_answer_gpt-4.jsonl.gz');
  for await (const { value, line } of readJsonl(refFile)) {
    const loc = { file: refFile, line };
    const r = asObject(value, loc, '{"question_id", "choices": [{"turns": [...]}]}');
    const choices = r.choices;
    const first = Array.isArray(choices) ? (choices[0] as Record<string, unknown> | undefined) : undefined;
    references.set(numberField(r, 'question_id', loc), stringList(first?.turns, 'choices[0].turns', loc));
  }
  const questions: MtBenchQuestion[] = [];
  const qFile = datasetPath('mt_bench/question.jsonl.gz');
  for await (const { value, line } of readJsonl(qFile)) {
    const loc = { file: qFile, line };
    const r = asObject(value, loc, '{"question_id", "category", "turns": [...]}');
    const id = numberField(r, 'question_id', loc);
    const reference =
      r.reference === undefined ? references.get(id) : stringList(r.reference, 'reference', loc);
    questions.push({
      id,
      category: stringField(r, 'category', loc),
      turns: stringList(r.turns, 'turns', loc),
      ...(reference === undefined ? {} : { reference }),
    });
  }
  const judgePrompts: JudgePrompt[] = [];
  const jFile = datasetPath('mt_bench/judge_prompts.jsonl.gz');
  for await (const { value, line } of readJsonl(jFile)) {
    const loc = { file: jFile, line };
    const r = asObject(value, loc, '{"name", "type", "system_prompt", "prompt_template", ...}');
    const type = stringField(r, 'type', loc);
    if (type !== 'pairwise' && type !== 'single')
      throw fieldError(
        loc,
        'type',
        `"type" must be pairwise or single, got ${type}`,
        're-copy the shipped file',
      );
    judgePrompts.push({
      name: stringField(r, 'name', loc),
      type,
      category: stringField(r, 'category', loc),
      description: stringField(r, 'description', loc),
      systemPrompt: stringField(r, 'system_prompt', loc),
      promptTemplate: stringField(r, 'prompt_template', loc),
      outputFormat: stringField(r, 'output_format', loc),
    });
  }
  return { questions, judgePrompts };
}

let cache: Promise<MtBenchData> | undefined;

/** MT-Bench questions and judge prompts, parsed once per process. */
export function mtBench(): Promise<MtBenchData> {
  cache ??= loadMtBench().catch((error: unknown) => {
    cache = undefined;
    throw error;
  });
  return cache;
}
