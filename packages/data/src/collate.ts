/**
 * Batch collation into plain typed arrays (the model packages make tensors from them).
 *
 * Default padding side: RIGHT. Real tokens then sit at positions 0..len-1 in every row, exactly as in
 * unbatched training and generation, so learned position embeddings see the same positions whatever
 * the batch; a reward model reads the last real token at `lastIndex[b] = lengths[b] - 1`. LEFT padding
 * is for batched generation, where every prompt must end in the same column; then
 * `lastIndex[b] = time - 1` and the model must offset positions by the padding (`time - lengths[b]`).
 */
import { ConfigError } from '@quorum/core';

export interface CollateOptions {
  /** `right` (default) or `left`; see this file's header. */
  readonly padSide?: 'right' | 'left';
  readonly padId: number;
  /** Fixed time length (default: the longest sequence). Longer sequences are an error. */
  readonly length?: number;
}

export interface Batch {
  /** Token ids, row-major `[batch, time]`. */
  readonly ids: Int32Array;
  /** 1 for real tokens, 0 for padding, `[batch, time]`. */
  readonly mask: Float32Array;
  /** Real tokens per row, `[batch]`. */
  readonly lengths: Int32Array;
  /** Column of each row's last real token, `[batch]`. */
  readonly lastIndex: Int32Array;
  readonly batch: number;
  readonly time: number;
  readonly padSide: 'right' | 'left';
}

/** Largest `batch × time` a batch may hold: 2^28 cells are already 1 GiB of ids plus 1 GiB of mask. */
const MAX_CELLS = 2 ** 28;

export function collate(seqs: readonly ArrayLike<number>[], options: CollateOptions): Batch {
  const padSide = options.padSide ?? 'right';
  const batch = seqs.length;
  if (batch === 0)
    throw new ConfigError('cannot collate an empty batch', {
      location: { field: 'seqs' },
      hint: 'pass at least one sequence',
    });
  // A loop, not Math.max(...lengths): spreading a few hundred thousand arguments overflows the stack.
  let longest = 0;
  for (const s of seqs) longest = Math.max(longest, s.length);
  const time = options.length ?? longest;
  if (!Number.isSafeInteger(time) || time < 0) {
    throw new ConfigError(`batch length must be a whole number of tokens, got ${time}`, {
      location: { field: 'length' },
      hint: 'leave it out to use the longest sequence, or give a non-negative integer',
    });
  }
  if (batch * time > MAX_CELLS) {
    throw new ConfigError(`a batch of ${batch} × ${time} tokens is too large to allocate`, {
      location: { field: 'length' },
      hint: `keep batch × length at most ${MAX_CELLS}: use smaller batches or truncate the sequences`,
    });
  }
  if (longest > time) {
    throw new ConfigError(`a sequence of length ${longest} exceeds the batch length ${time}`, {
      location: { field: 'length' },
      hint: 'truncate with encodePromptResponse({ maxLength }) first, or raise length',
    });
  }
  const ids = new Int32Array(batch * time).fill(options.padId);
  const mask = new Float32Array(batch * time);
  const lengths = new Int32Array(batch);
  const lastIndex = new Int32Array(batch);
  seqs.forEach((seq, b) => {
    const offset = b * time + (padSide === 'left' ? time - seq.length : 0);
    for (let t = 0; t < seq.length; t++) {
      ids[offset + t] = seq[t]!;
      mask[offset + t] = 1;
    }
    lengths[b] = seq.length;
    lastIndex[b] = padSide === 'left' ? time - 1 : seq.length - 1;
  });
  return { ids, mask, lengths, lastIndex, batch, time, padSide };
}
