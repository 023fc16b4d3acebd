/**
 * From text to token batches: the shared prompt template, right padding (the reward reads the last real
 * token, found from the mask, so the side does not matter to the result; right keeps positions simple).
 */
import {
  collate,
  encodePromptResponse,
  type PreferencePair,
  type Prompt,
  type TextTokenizer,
  type TruncationMode,
} from '@quorum/data';
import * as tf from '@tensorflow/tfjs';
import type { TokenBatch } from './architecture.js';

export interface EncodedPair {
  readonly chosen: Int32Array;
  readonly rejected: Int32Array;
  /** Training weight (1 unless length balancing or the file set one). */
  readonly weight: number;
  /** Response lengths in tokens (eos included), for the length correlation. */
  readonly chosenLength: number;
  readonly rejectedLength: number;
}

/** Encodes both answers of a pair with the prompt template; truncation keeps each response's end. */
export function encodePair(tokenizer: TextTokenizer, pair: PreferencePair, maxLength: number): EncodedPair {
  const c = encodePromptResponse(tokenizer, pair.prompt, pair.chosen, { maxLength });
  const r = encodePromptResponse(tokenizer, pair.prompt, pair.rejected, { maxLength });
  return {
    chosen: c.ids,
    rejected: r.ids,
    weight: pair.weight ?? 1,
    chosenLength: c.responseLength + c.truncated.response,
    rejectedLength: r.responseLength + r.truncated.response,
  };
}

/** Pairs encoded under a `TruncationMode`, with what the mode did (for the caller to print). */
export interface EncodedPairs {
  readonly encoded: EncodedPair[];
  /** The pairs behind `encoded`, in order (`drop` leaves some out). */
  readonly kept: PreferencePair[];
  /** Pairs left out because an answer did not fit `maxLength` (`drop` only). */
  readonly dropped: number;
  /** Pairs kept with at least one side cut (`left` only). */
  readonly truncated: number;
}

/**
 * Encodes pairs with the prompt template: `left` (default) cuts a sequence longer than `maxLength` (the end
 * of each answer and eos stay, see @quorum/data's template); `drop` leaves out every pair with a side that
 * does not fit, as TRL does.
 */
export function encodePairs(
  tokenizer: TextTokenizer,
  pairs: readonly PreferencePair[],
  maxLength: number,
  truncation: TruncationMode = 'left',
): EncodedPairs {
  const encoded: EncodedPair[] = [];
  const kept: PreferencePair[] = [];
  let dropped = 0;
  let truncated = 0;
  for (const pair of pairs) {
    const c = encodePromptResponse(tokenizer, pair.prompt, pair.chosen, { maxLength, truncation });
    const r = encodePromptResponse(tokenizer, pair.prompt, pair.rejected, { maxLength, truncation });
    if (c === undefined || r === undefined) {
      dropped++;
      continue;
    }
    if (c.overflow > 0 || r.overflow > 0) truncated++;
    kept.push(pair);
    encoded.push({
      chosen: c.ids,
      rejected: r.ids,
      weight: pair.weight ?? 1,
      chosenLength: c.responseLength + c.truncated.response,
      rejectedLength: r.responseLength + r.truncated.response,
    });
  }
  return { encoded, kept, dropped, truncated };
}

/** Encodes one answer to a prompt (for scoring). */
export function encodeAnswer(
  tokenizer: TextTokenizer,
  prompt: Prompt,
  answer: string,
  maxLength: number,
): Int32Array {
  return encodePromptResponse(tokenizer, prompt, answer, { maxLength }).ids;
}

/** Pads sequences into a TokenBatch (ids int32 [B, T], mask float32 [B, T]). The caller disposes it. */
export function tokenBatch(seqs: readonly ArrayLike<number>[], padId: number): TokenBatch {
  const b = collate(seqs, { padId, padSide: 'right' });
  return {
    ids: tf.tensor2d(b.ids, [b.batch, b.time], 'int32'), // [B, T]
    mask: tf.tensor2d(b.mask, [b.batch, b.time], 'float32'), // [B, T]
  };
}

/** A pair batch as one forward: rows 0..B-1 are the chosen answers, B..2B-1 the rejected ones. */
export function pairTokenBatch(pairs: readonly EncodedPair[], padId: number): TokenBatch {
  return tokenBatch([...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)], padId);
}

export function disposeBatch(batch: TokenBatch): void {
  batch.ids.dispose();
  batch.mask.dispose();
}
