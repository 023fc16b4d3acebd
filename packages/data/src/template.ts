/**
 * The one prompt template used by SFT, reward models, Best-of-n and PPO:
 *
 *   ### Instruction:\n{instruction}[\n\n### Input:\n{input}]\n\n### Response:\n{response}<eos>
 *
 * Ids are built from separately encoded pieces (template head, instruction body, response marker,
 * response, eos), so a prompt encodes to the same ids whether or not a response follows: what a policy
 * generates after `encodePrompt` is exactly the response part of `encodePromptResponse`.
 *
 * Truncation rule (when the sequence exceeds `maxLength`):
 *   1. the instruction body loses tokens from its END, down to `minInstructionTokens` (default 32) or
 *      half of the room left by the template, whichever is smaller;
 *   2. then the response loses tokens from its START — its end and the eos token are always kept,
 *      because the reward head reads the last token.
 * The template head, the `### Response:` marker and eos are never cut.
 */
import { ConfigError } from '@quorum/core';
import type { Tokenizer } from './tokenizer.js';
import type { Prompt } from './types.js';

const HEAD = '### Instruction:\n';
const INPUT = '\n\n### Input:\n';
const TAIL = '\n\n### Response:\n';

/** The prompt as text, ending where the response starts. */
export function formatPrompt(prompt: Prompt): string {
  return HEAD + promptBody(prompt) + TAIL;
}

function promptBody(prompt: Prompt): string {
  return prompt.input === '' ? prompt.instruction : prompt.instruction + INPUT + prompt.input;
}

export interface EncodeOptions {
  /** Longest sequence allowed, eos included. */
  readonly maxLength: number;
  /** Instruction tokens kept before the response is cut (default 32). */
  readonly minInstructionTokens?: number;
  /** Append the eos id after the response (default true). */
  readonly eos?: boolean;
}

export interface EncodedSequence {
  /** prompt ids, then response ids (then eos). */
  readonly ids: Int32Array;
  /** Number of prompt ids; the response starts at this index. */
  readonly promptLength: number;
  /** Response ids including eos. */
  readonly responseLength: number;
  /** Tokens removed by truncation from the instruction body and from the response start. */
  readonly truncated: { readonly prompt: number; readonly response: number };
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

/** Prompt ids for generation (the same ids `encodePromptResponse` puts before a response). */
export function encodePrompt(
  tokenizer: Tokenizer,
  prompt: Prompt,
  options: { maxLength?: number } = {},
): Int32Array {
  const head = tokenizer.encode(HEAD);
  const tail = tokenizer.encode(TAIL);
  const body = tokenizer.encode(promptBody(prompt));
  if (options.maxLength === undefined) return concat([head, body, tail]);
  checkMaxLength(options.maxLength, head.length + tail.length);
  return concat([head, body.subarray(0, options.maxLength - head.length - tail.length), tail]);
}

/** Prompt + response (+ eos) ids within `maxLength`, truncated by the rule in this file's header. */
export function encodePromptResponse(
  tokenizer: Tokenizer,
  prompt: Prompt,
  response: string,
  options: EncodeOptions,
): EncodedSequence {
  const head = tokenizer.encode(HEAD);
  const tail = tokenizer.encode(TAIL);
  const body = tokenizer.encode(promptBody(prompt));
  const resp = tokenizer.encode(response);
  const eos = options.eos === false ? [] : [tokenizer.eosId];
  const fixed = head.length + tail.length + eos.length;
  checkMaxLength(options.maxLength, fixed);
  const minInstructionTokens = options.minInstructionTokens ?? 32;
  checkMinInstructionTokens(minInstructionTokens);
  const room = options.maxLength - fixed;
  const minBody = Math.min(body.length, minInstructionTokens, Math.floor(room / 2));
  let bodyLen = body.length;
  let respLen = resp.length;
  if (bodyLen + respLen > room) bodyLen = Math.max(minBody, room - respLen); // 1. shorten the prompt
  if (bodyLen + respLen > room) respLen = room - bodyLen; // 2. keep the response's end
  const ids = concat([head, body.subarray(0, bodyLen), tail, resp.subarray(resp.length - respLen), eos]);
  return {
    ids,
    promptLength: head.length + bodyLen + tail.length,
    responseLength: respLen + eos.length,
    truncated: { prompt: body.length - bodyLen, response: resp.length - respLen },
  };
}
