/**
 * The judge prompts of the `llm` judge.
 *
 * Pairwise: AlpacaEval 2.0's annotator prompt (`alpaca_eval_clf`, used by `weighted_alpaca_eval_gpt4_turbo`),
 * written out here: the judge answers with one model identifier, `m` (the first output) or `M` (the
 * second), and when the endpoint returns log-probabilities, the probability of `m` vs `M` gives p and
 * decides the verdict (a reply whose text disagrees is flagged as a conflict, see `parsePairwise`).
 *
 * Single answer: MT-Bench's `single-v1` prompts from the shipped FastChat judge_prompts (with the
 * reference answer for math, reasoning and coding, and the multi-turn variants for turn 2), parsed as
 * FastChat does: `[[rating]]`, else `[rating]`.
 */
import { ConfigError } from '@quorum/core';
import type { JudgePrompt } from '@quorum/data';
import type { ScoreItem } from '../judge.js';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

const PAIRWISE_SYSTEM =
  'You are a highly efficient assistant, who evaluates and selects the best large language model (LLMs) based on the quality of their responses to a given instruction. This process will be used to create a leaderboard reflecting the most accurate and human-preferred answers.';

const PAIRWISE_TEMPLATE = `I require a leaderboard for various large language models. I'll provide you with prompts given to these models and their corresponding outputs. Your task is to assess these responses, and select the model that produces the best output from a human perspective.

## Instruction

{
    "instruction": """{instruction}""",
}

## Model Outputs

Here are the unordered outputs from the models. Each output is associated with a specific model, identified by a unique model identifier.

{
    {
        "model_identifier": "m",
        "output": """{output_1}"""
    },
    {
        "model_identifier": "M",
        "output": """{output_2}"""
    }
}

## Task

Evaluate the models based on the quality and relevance of their outputs, and select the model that generated the best output. Answer by providing the model identifier of the best model. We will use your output as the name of the best model, so make sure your output only contains one of the following model identifiers and nothing else (no quotes, no spaces, no new lines, ...): m or M.

## Best Model Identifier
`;

/** Replaces `{name}` placeholders in one pass (values are never re-scanned, so braces in answers are safe). */
export function fillTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole);
}

/** The AlpacaEval pairwise prompt with `first` shown as model `m` and `second` as model `M`. */
export function pairwiseMessages(
  instruction: string,
  input: string,
  first: string,
  second: string,
): ChatMessage[] {
  const fullInstruction = input === '' ? instruction : `${instruction}\n\n${input}`;
  return [
    { role: 'system', content: PAIRWISE_SYSTEM },
    {
      role: 'user',
      content: fillTemplate(PAIRWISE_TEMPLATE, {
        instruction: fullInstruction,
        output_1: first,
        output_2: second,
      }),
    },
  ];
}

/**
 * What a pairwise reply says. `choice` is the verdict; the rule (AlpacaEval 2.0's weighted judges): when the
 * first token's log-probs give P(m) ≠ 0.5 they decide, else the reply's text (`m`/`M`) does, else (P = 0.5
 * with unreadable text) the first output.
 */
export interface PairwiseReading {
  readonly choice: 'first' | 'second';
  /** P(first output) from the first token's log-probs, when the endpoint gave them. */
  readonly pFirst?: number;
  /** What the reply's text says (`m` → 'first', `M` → 'second'), when it is readable. */
  readonly token?: 'first' | 'second';
  /** Set when the text and the log-probs name different outputs; `choice` follows the log-probs. */
  readonly conflict?: true;
}

/** Top log-probabilities of the reply's first token, as OpenAI-compatible endpoints return them. */
export type TopLogprobs = readonly { readonly token: string; readonly logprob: number }[];

/** Reads `m` / `M` from the reply and p from the first token's top log-probs. Undefined when neither is readable. */
export function parsePairwise(content: string, top: TopLogprobs | undefined): PairwiseReading | undefined {
  let pFirst: number | undefined;
  if (top !== undefined) {
    let lm: number | undefined;
    let lM: number | undefined;
    for (const t of top) {
      const tok = t.token.trim();
      if (tok === 'm' && lm === undefined) lm = t.logprob;
      if (tok === 'M' && lM === undefined) lM = t.logprob;
    }
    if (lm !== undefined || lM !== undefined) {
      const em = lm === undefined ? 0 : Math.exp(lm);
      const eM = lM === undefined ? 0 : Math.exp(lM);
      if (em + eM > 0) pFirst = em / (em + eM);
    }
  }
  const text = content.trim().replace(/^["'`]+|["'`.]+$/g, '');
  const token = text === 'm' ? 'first' : text === 'M' ? 'second' : undefined;
  const byLogprobs = pFirst === undefined || pFirst === 0.5 ? undefined : pFirst > 0.5 ? 'first' : 'second';
  const choice = byLogprobs ?? token ?? (pFirst === undefined ? undefined : 'first');
  if (choice === undefined) return undefined;
  return {
    choice,
    ...(pFirst === undefined ? {} : { pFirst }),
    ...(token === undefined ? {} : { token }),
    ...(token !== undefined && byLogprobs !== undefined && token !== byLogprobs
      ? { conflict: true as const }
      : {}),
  };
}

/** MT-Bench categories judged with a reference answer (as FastChat's NEED_REF_CATS). */
export const REFERENCE_CATEGORIES: readonly string[] = ['math', 'reasoning', 'coding'];

function promptNamed(prompts: readonly JudgePrompt[], name: string): JudgePrompt {
  const p = prompts.find((j) => j.name === name);
  if (p === undefined) {
    throw new ConfigError(`MT-Bench judge prompt "${name}" is missing from judge_prompts`, {
      location: { field: 'judgePrompts' },
      hint: 're-copy the shipped mt_bench/judge_prompts.jsonl.gz',
    });
  }
  return p;
}

/** The MT-Bench single-answer prompt for `item` (turn 1, or turn 2 with one earlier turn). */
export function singleMessages(prompts: readonly JudgePrompt[], item: ScoreItem): ChatMessage[] {
  const history = item.history ?? [];
  if (history.length > 1) {
    throw new ConfigError(`MT-Bench prompts judge one or two turns; got ${history.length + 1}`, {
      location: { field: 'history' },
      hint: 'pass at most one earlier turn',
    });
  }
  const question = (item.input ?? '') === '' ? item.instruction : `${item.instruction}\n\n${item.input}`;
  const refs = item.references ?? [];
  const useRef =
    item.category !== undefined &&
    REFERENCE_CATEGORIES.includes(item.category) &&
    refs.length > history.length;
  const multi = history.length === 1;
  const name = `single-${useRef ? 'math-' : ''}v1${multi ? '-multi-turn' : ''}`;
  const jp = promptNamed(prompts, name);
  const values: Record<string, string> = multi
    ? {
        question_1: history[0]!.question,
        answer_1: history[0]!.answer,
        question_2: question,
        answer_2: item.answer,
        ref_answer_1: refs[0] ?? '',
        ref_answer_2: refs[1] ?? '',
      }
    : { question, answer: item.answer, ref_answer_1: refs[0] ?? '' };
  return [
    { role: 'system', content: jp.systemPrompt },
    { role: 'user', content: fillTemplate(jp.promptTemplate, values) },
  ];
}

/** FastChat's rating parse: `[[x]]`, else `[x]`. Undefined when neither is there. */
export function parseRating(content: string): number | undefined {
  const m = /\[\[(\d+\.?\d*)\]\]/.exec(content) ?? /\[(\d+\.?\d*)\]/.exec(content);
  if (m === null) return undefined;
  const v = Number(m[1]);
  return Number.isFinite(v) ? v : undefined;
}
