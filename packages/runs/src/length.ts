/**
 * How long the sequences of a run are. A model built from scratch gets the context the run asks for; a
 * loaded model (a Quorum policy or a Hugging Face folder) brings its own, `contextLength` (config.json's
 * `max_position_embeddings`), which bounds `maxLength`. Sequences longer than `maxLength` are cut or left
 * out by the run's `truncation` (@quorum/data's `TruncationMode`: `left` keeps the end of the answer and
 * the reward token, `drop` leaves the sequence out as TRL does). `chooseMaxLength` proposes a length from
 * the data: a quantile of the pairs' token lengths, with the share of pairs it truncates.
 */
import type { GptConfig } from '@quorum/backbone';
import { ConfigError } from '@quorum/core';
import { encodePromptResponse, type PreferencePair, type Prompt, type TextTokenizer } from '@quorum/data';

/** TRL's default `max_length` (RewardConfig, SFTConfig): the cap on a loaded model's sequences. */
export const DEFAULT_MAX_LENGTH = 1024;

/**
 * The run's sequence length for `config`: `maxLength` when given (an error when it exceeds the model's
 * context), else the model's context capped at DEFAULT_MAX_LENGTH.
 */
export function resolveMaxLength(
  config: Pick<GptConfig, 'contextLength'>,
  maxLength: number | undefined,
  field = 'maxLength',
): number {
  if (maxLength === undefined) return Math.min(config.contextLength, DEFAULT_MAX_LENGTH);
  if (!Number.isSafeInteger(maxLength) || maxLength < 8) {
    throw new ConfigError(`${field} must be an integer of at least 8, got ${maxLength}`, {
      location: { field },
      hint: `pass a length in tokens up to the model's ${config.contextLength}`,
    });
  }
  if (maxLength > config.contextLength) {
    throw new ConfigError(
      `${field} ${maxLength} exceeds the model's context of ${config.contextLength} tokens (max_position_embeddings)`,
      {
        location: { field },
        hint: `pass at most ${config.contextLength}; longer pairs are cut or dropped by the truncation choice`,
      },
    );
  }
  return maxLength;
}

/**
 * The q-quantiles of `lengths` by nearest rank: for each q the smallest length L with at least a share q
 * of the lengths ≤ L (so a share of at most 1 − q is longer).
 */
export function lengthQuantiles(lengths: readonly number[], quantiles: readonly number[]): number[] {
  if (lengths.length === 0) {
    throw new ConfigError('no lengths to take quantiles of', {
      location: { field: 'lengths' },
      hint: 'pass at least one pair',
    });
  }
  const sorted = [...lengths].sort((a, b) => a - b);
  return quantiles.map((q) => {
    if (!(q > 0 && q <= 1)) {
      throw new ConfigError(`quantile must be in (0, 1], got ${q}`, {
        location: { field: 'quantile' },
        hint: 'pass e.g. 0.95 for the 95th percentile',
      });
    }
    return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
  });
}

/** Share of `lengths` longer than `maxLength` (the sequences a run of that length cuts or drops). */
export function truncatedShare(lengths: readonly number[], maxLength: number): number {
  if (lengths.length === 0) return 0;
  return lengths.filter((n) => n > maxLength).length / lengths.length;
}

/**
 * Tokens of each pair's longer sequence, prompt template + answer + eos (what `encodePromptResponse` would
 * produce uncut): a pair is truncated at L when either of its two sequences exceeds L.
 */
export function pairLengths(
  pairs: readonly Pick<PreferencePair, 'prompt' | 'chosen' | 'rejected'>[],
  tokenizer: TextTokenizer,
): number[] {
  // A reference answer recurs in every pair of its instruction: encode each (prompt, answer) once.
  const cache = new Map<string, number>();
  const lengthOf = (prompt: Prompt, answer: string): number => {
    const key = `${prompt.instruction}\u0000${prompt.input}\u0000${answer}`;
    let n = cache.get(key);
    if (n === undefined) {
      n = encodePromptResponse(tokenizer, prompt, answer, { maxLength: Number.MAX_SAFE_INTEGER }).ids.length;
      cache.set(key, n);
    }
    return n;
  };
  return pairs.map((p) => Math.max(lengthOf(p.prompt, p.chosen), lengthOf(p.prompt, p.rejected)));
}

export interface MaxLengthChoiceOptions {
  /** Share of pairs that should fit (default 0.95: the 95th percentile). */
  readonly quantile?: number;
  /** The model's context: the choice never exceeds it. */
  readonly contextLength: number;
  /** Round the quantile up to a multiple of this (default 8; 1 keeps it exact). */
  readonly multipleOf?: number;
}

export interface MaxLengthChoice {
  /** The proposed max length: the quantile rounded up to `multipleOf`, within [8, contextLength]. */
  readonly maxLength: number;
  readonly quantile: number;
  /** The quantile of the pair lengths itself, before rounding and the context bound. */
  readonly quantileLength: number;
  /** Whether the context, not the quantile, set the length. */
  readonly boundedByContext: boolean;
  /** Share of the pairs longer than maxLength (cut by `left`, left out by `drop`). */
  readonly truncatedShare: number;
  readonly pairs: number;
  /** p50, p90, p99 and the longest pair, for the report. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly longest: number;
  /** One line for a log: `max length 392 (p95 of pair lengths); 4.8% of pairs truncated`. */
  readonly summary: string;
}

/** `chooseMaxLength` over lengths already measured (one per pair). */
export function maxLengthFromLengths(
  lengths: readonly number[],
  options: MaxLengthChoiceOptions,
): MaxLengthChoice {
  const quantile = options.quantile ?? 0.95;
  const multipleOf = options.multipleOf ?? 8;
  if (!Number.isSafeInteger(multipleOf) || multipleOf < 1) {
    throw new ConfigError(`multipleOf must be a positive integer, got ${multipleOf}`, {
      location: { field: 'multipleOf' },
      hint: 'pass 1 for the exact quantile, or 8',
    });
  }
  const [quantileLength, p50, p90, p99, longest] = lengthQuantiles(lengths, [
    quantile,
    0.5,
    0.9,
    0.99,
    1,
  ]) as [number, number, number, number, number];
  const rounded = Math.max(8, Math.ceil(quantileLength / multipleOf) * multipleOf);
  const boundedByContext = rounded > options.contextLength;
  const maxLength = boundedByContext ? options.contextLength : rounded;
  const share = truncatedShare(lengths, maxLength);
  const pct = `p${+(quantile * 100).toFixed(2)}`;
  const why = boundedByContext
    ? `the model's context; the ${pct} of pair lengths is ${quantileLength}`
    : `${pct} of pair lengths${rounded === quantileLength ? '' : ` ${quantileLength}, rounded up to a multiple of ${multipleOf}`}`;
  return {
    maxLength,
    quantile,
    quantileLength,
    boundedByContext,
    truncatedShare: share,
    pairs: lengths.length,
    p50,
    p90,
    p99,
    longest,
    summary: `max length ${maxLength} (${why}); ${(share * 100).toFixed(1)}% of pairs truncated`,
  };
}

/**
 * A max length chosen from the data: the `quantile` (default p95) of the pairs' token lengths (prompt
 * template + the longer answer + eos), rounded up to a multiple of 8 and bounded by the model's context,
 * with the share of pairs it truncates.
 */
export function chooseMaxLength(
  pairs: readonly Pick<PreferencePair, 'prompt' | 'chosen' | 'rejected'>[],
  tokenizer: TextTokenizer,
  options: MaxLengthChoiceOptions,
): MaxLengthChoice {
  return maxLengthFromLengths(pairLengths(pairs, tokenizer), options);
}
