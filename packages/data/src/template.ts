/**
 * The prompt template used by SFT, reward models, Best-of-n and PPO. A `PromptFormat` lays out an
 * instruction and its answer; the tokenizer carries the one its model expects (`tokenizer.promptFormat`),
 * and every encode helper takes `options.format` to override it. Two kinds:
 *
 * - `INSTRUCTION_FORMAT`, Quorum's own (the default of Quorum's tokenizer and of a Hugging Face model
 *   without a chat template):
 *
 *     ### Instruction:\n{instruction}[\n\n### Input:\n{input}]\n\n### Response:\n{response}<eos>
 *
 * - a chat template (`chatTemplateFormat` in hf-tokenizer.ts): the model's `tokenizer_config.json`
 *   `chat_template` rendered for `[{role: 'user', content}, {role: 'assistant', content}]`, as TRL does for
 *   conversational data.
 *
 * Ids are built from separately encoded pieces (prefix ids such as BOS, template head, prompt body,
 * template tail, response, template end, eos). The first text piece is encoded as the start of a text,
 * the others as continuations (`encodeContinuation`: no sentencepiece dummy-prefix space), so a prompt
 * encodes to the same ids whether or not a response follows: what a policy generates after
 * `encodePrompt` is exactly the response part of `encodePromptResponse`.
 *
 * Truncation rule (when the sequence exceeds `maxLength`):
 *   1. the prompt body loses tokens from its END, down to `minInstructionTokens` (default 32) or
 *      half of the room left by the template, whichever is smaller;
 *   2. then the response loses tokens from its START — its end, the template end and the eos token are
 *      always kept, because the reward head reads the last token.
 * The prefix ids, template head, tail (`### Response:` marker), end and eos are never cut.
 * That is `truncation: 'left'` (the default). `truncation: 'drop'` is TRL's rule instead: a sequence
 * longer than `maxLength` is not encoded at all (`encodePromptResponse` returns `undefined`), so the
 * caller leaves the pair out and counts it.
 */
import { ConfigError } from '@quorum/core';
import type { TextTokenizer } from './tokenizer.js';
import type { Prompt } from './types.js';

/**
 * How an instruction and its answer become one sequence. Text pieces may hold a tokenizer's special-token
 * strings (`<|im_start|>`); a Hugging Face tokenizer encodes them as their ids.
 */
export interface PromptFormat {
  /** `instruction` (Quorum's template) or `chat-template` (the model's own); reports show it. */
  readonly name: string;
  /** Ids that start every sequence (the BOS of a tokenizer with `add_bos_token`); never cut. */
  readonly prefixIds: readonly number[];
  /** Template text before the prompt body; never cut. */
  readonly head: string;
  /** The prompt body as text (instruction and optional input): the part truncation shortens first. */
  body(prompt: Prompt): string;
  /** Template text between the body and the response (it ends where the response starts); never cut. */
  readonly tail: string;
  /** Template text after the response (a chat template's end of turn; '' for Quorum's); never cut. */
  readonly end: string;
  /** Whether the tokenizer's eos id follows `end` (Quorum's template: yes; a chat template ends its own turn). */
  readonly eos: boolean;
}

const HEAD = '### Instruction:\n';
const INPUT = '\n\n### Input:\n';
const TAIL = '\n\n### Response:\n';

function promptBody(prompt: Prompt): string {
  return prompt.input === '' ? prompt.instruction : prompt.instruction + INPUT + prompt.input;
}

/** Quorum's `### Instruction:` template (no prefix ids), the format of every Quorum-tokenizer model. */
export const INSTRUCTION_FORMAT: PromptFormat = {
  name: 'instruction',
  prefixIds: [],
  head: HEAD,
  body: promptBody,
  tail: TAIL,
  end: '',
  eos: true,
};

/** Quorum's template with `prefixIds` first (a Llama tokenizer with `add_bos_token` gives `[bosId]`). */
export function instructionFormat(prefixIds: readonly number[] = []): PromptFormat {
  return prefixIds.length === 0 ? INSTRUCTION_FORMAT : { ...INSTRUCTION_FORMAT, prefixIds: [...prefixIds] };
}

/** The prompt as text, ending where the response starts (prefix ids are not text and are left out). */
export function formatPrompt(prompt: Prompt, format: PromptFormat = INSTRUCTION_FORMAT): string {
  return format.head + format.body(prompt) + format.tail;
}

/**
 * What happens to a prompt + response longer than `maxLength`: `left` (default) cuts it by the rule in
 * this file's header (the end of the answer and eos stay); `drop` leaves it out, as TRL does.
 */
export type TruncationMode = 'left' | 'drop';

export interface EncodeOptions {
  /** Longest sequence allowed, eos included. */
  readonly maxLength: number;
  /** Instruction tokens kept before the response is cut (default 32). */
  readonly minInstructionTokens?: number;
  /** End the sequence after the response with the format's end text and eos id (default true). */
  readonly eos?: boolean;
  /** The layout; default `tokenizer.promptFormat`. */
  readonly format?: PromptFormat;
  /** Default `left`; see `TruncationMode`. */
  readonly truncation?: TruncationMode;
}

export interface EncodedSequence {
  /** prompt ids, then response ids (then eos). */
  readonly ids: Int32Array;
  /** Number of prompt ids; the response starts at this index. */
  readonly promptLength: number;
  /** Response ids including the format's end ids and eos. */
  readonly responseLength: number;
  /** Tokens removed by truncation from the instruction body and from the response start. */
  readonly truncated: { readonly prompt: number; readonly response: number };
  /** Tokens the whole sequence had beyond `maxLength` before truncation (0 when it fitted). */
  readonly overflow: number;
}

function concat(parts: readonly ArrayLike<number>[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function checkMaxLength(maxLength: number, fixed: number): void {
  if (!Number.isInteger(maxLength) || maxLength <= fixed) {
    throw new ConfigError(`maxLength ${maxLength} leaves no room: the template alone takes ${fixed} tokens`, {
      location: { field: 'maxLength' },
      hint: `use a maxLength of at least ${fixed + 16}`,
    });
  }
}

/** `minInstructionTokens` must be a count: a negative, NaN or fractional one broke the length arithmetic. */
function checkMinInstructionTokens(value: number): void {
  if (!(value >= 0) || !(Number.isInteger(value) || value === Number.POSITIVE_INFINITY)) {
    throw new ConfigError(`minInstructionTokens must be a non-negative integer, got ${value}`, {
      location: { field: 'minInstructionTokens' },
      hint: 'leave it out for the default of 32, or give a whole number of tokens such as 16',
    });
  }
}

/** `text` without its trailing spaces, and those spaces. */
function splitTrailingSpaces(text: string): [string, string] {
  let i = text.length;
  while (i > 0 && text[i - 1] === ' ') i--;
  return [text.slice(0, i), text.slice(i)];
}

/**
 * The prompt pieces, each encoded once: the first text piece as a text start, the rest as continuations.
 * Trailing spaces of the template head and tail move to the text after them (`[INST] ` + prompt): BPE
 * tokenizers glue a space to the word that follows it, so the pieces then encode like the whole text.
 */
function promptPieces(
  tokenizer: TextTokenizer,
  prompt: Prompt,
  format: PromptFormat,
): {
  head: Int32Array;
  body: Int32Array;
  tail: Int32Array;
  response: (text: string) => Int32Array;
  piece: (text: string) => Int32Array;
} {
  let started = false;
  const piece = (text: string): Int32Array => {
    if (text === '') return new Int32Array(0);
    const ids = started ? tokenizer.encodeContinuation(text) : tokenizer.encode(text);
    started = true;
    return ids;
  };
  const [headText, headSpaces] = splitTrailingSpaces(format.head);
  const [tailText, tailSpaces] = splitTrailingSpaces(format.tail);
  const head = concat([format.prefixIds, piece(headText)]);
  const body = piece(headSpaces + format.body(prompt));
  const tail = piece(tailText);
  return { head, body, tail, response: (text) => piece(tailSpaces + text), piece };
}

/** Prompt ids for generation (the same ids `encodePromptResponse` puts before a response). */
export function encodePrompt(
  tokenizer: TextTokenizer,
  prompt: Prompt,
  options: { maxLength?: number; format?: PromptFormat } = {},
): Int32Array {
  const { head, body, tail } = promptPieces(tokenizer, prompt, options.format ?? tokenizer.promptFormat);
  if (options.maxLength === undefined) return concat([head, body, tail]);
  checkMaxLength(options.maxLength, head.length + tail.length);
  return concat([head, body.subarray(0, options.maxLength - head.length - tail.length), tail]);
}

/**
 * Prompt + response (+ end + eos) ids within `maxLength`, truncated by the rule in this file's header;
 * with `truncation: 'drop'`, `undefined` for a sequence that does not fit.
 */
export function encodePromptResponse(
  tokenizer: TextTokenizer,
  prompt: Prompt,
  response: string,
  options: EncodeOptions & { readonly truncation: 'drop' },
): EncodedSequence | undefined;
export function encodePromptResponse(
  tokenizer: TextTokenizer,
  prompt: Prompt,
  response: string,
  options: EncodeOptions & { readonly truncation?: 'left' | undefined },
): EncodedSequence;
export function encodePromptResponse(
  tokenizer: TextTokenizer,
  prompt: Prompt,
  response: string,
  options: EncodeOptions,
): EncodedSequence | undefined;
export function encodePromptResponse(
  tokenizer: TextTokenizer,
  prompt: Prompt,
  response: string,
  options: EncodeOptions,
): EncodedSequence | undefined {
  const truncation = options.truncation ?? 'left';
  if (truncation !== 'left' && truncation !== 'drop') {
    throw new ConfigError(`truncation must be "left" or "drop", got ${JSON.stringify(truncation)}`, {
      location: { field: 'truncation' },
      hint: '"left" keeps the end of the answer and eos; "drop" leaves out sequences longer than maxLength',
    });
  }
  const format = options.format ?? tokenizer.promptFormat;
  const { head, body, tail, response: responseIds, piece } = promptPieces(tokenizer, prompt, format);
  const resp = responseIds(response);
  const closing = options.eos === false ? [] : [piece(format.end), format.eos ? [tokenizer.eosId] : []];
  const end = concat(closing);
  const fixed = head.length + tail.length + end.length;
  checkMaxLength(options.maxLength, fixed);
  const minInstructionTokens = options.minInstructionTokens ?? 32;
  checkMinInstructionTokens(minInstructionTokens);
  const room = options.maxLength - fixed;
  const overflow = Math.max(0, body.length + resp.length - room);
  if (overflow > 0 && truncation === 'drop') return undefined;
  const minBody = Math.min(body.length, minInstructionTokens, Math.floor(room / 2));
  let bodyLen = body.length;
  let respLen = resp.length;
  if (bodyLen + respLen > room) bodyLen = Math.max(minBody, room - respLen); // 1. shorten the prompt
  if (bodyLen + respLen > room) respLen = room - bodyLen; // 2. keep the response's end
  const ids = concat([head, body.subarray(0, bodyLen), tail, resp.subarray(resp.length - respLen), end]);
  return {
    ids,
    promptLength: head.length + bodyLen + tail.length,
    responseLength: respLen + end.length,
    truncated: { prompt: body.length - bodyLen, response: resp.length - respLen },
    overflow,
  };
}
