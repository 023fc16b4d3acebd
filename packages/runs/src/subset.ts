/** Seeded subsets: the one way runs pick `limit` of `items` (training pairs, eval pairs, pools, prompts). */
import type { Rng } from '@quorum/core';

export interface SubsetOptions {
  /**
   * Keep the chosen items in their original order (true) or in the order drawn (false). `quorum
   * reproduce` keeps the order, `train-rm` does not: both are kept, so neither run's numbers change.
   */
  readonly keepOrder: boolean;
}

/** `limit` items drawn without replacement by `rng`; all of them (copied) when `limit` is undefined or ≥ the count. */
export function seededSubset<T>(
  items: readonly T[],
  limit: number | undefined,
  rng: Rng,
  options: SubsetOptions,
): T[] {
  if (limit === undefined || limit >= items.length) return [...items];
  const chosen = rng.permutation(items.length).slice(0, limit);
  if (options.keepOrder) chosen.sort((a, b) => a - b);
  return chosen.map((i) => items[i] as T);
}
