/**
 * How long the sequences of a run are. A model built from scratch gets the context the run asks for; a
 * loaded model (a Quorum policy or a Hugging Face folder) brings its own, `contextLength` (config.json's
 * `max_position_embeddings`), which bounds `maxLength`. Sequences longer than `maxLength` are cut or left
 * out by the run's `truncation` (@quorum/data's `TruncationMode`: `left` keeps the end of the answer and
 * the reward token, `drop` leaves the sequence out as TRL does).
 */
import type { GptConfig } from '@quorum/backbone';
import { ConfigError } from '@quorum/core';

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
