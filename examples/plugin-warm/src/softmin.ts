/**
 * `softmin`: a soft worst case, −τ·log mean_m exp(−r_m/τ) over the k members' rewards.
 *
 * τ → 0 gives `min` (the worst member), τ → ∞ gives `mean`; in between it leans towards the members that
 * score an answer lowest without trusting a single one the way `min` does. It is monotone, lies between
 * the members' min and mean (so it is pessimistic: ≤ mean, by Jensen), and adding c to every member adds c.
 *
 * Computed stably through log-sum-exp: softmin = −τ·(logsumexp(−r/τ) − log k).
 */
import { type AggregationRule, aggregationRule } from '@quorum/aggregation';
import { defineStrategy, resolveOptions } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

/**
 * `tau` default 1: member rewards are Bradley-Terry logits of order 1, so τ = 1 sits between `min`
 * (τ → 0) and `mean` (τ → ∞) at the scale the rewards live on. τ must be > 0.
 */
export const softminOptions = z
  .object({
    tau: z
      .number()
      .positive()
      .default(1)
      .describe('temperature (> 0): small τ approaches min over members, large τ approaches their mean'),
  })
  .strict();

export type SoftminOptions = z.output<typeof softminOptions>;

/** softmin over the member axis: rewards [k, B] → [B]. */
export function softminAggregate(rewards: tf.Tensor2D, tau: number): tf.Tensor1D {
  return tf.tidy(() => {
    const k = rewards.shape[0];
    const lse = tf.logSumExp(tf.div(tf.neg(rewards), tau), 0); // [B]
    return tf.mul(tf.sub(lse, Math.log(k)), -tau) as tf.Tensor1D; // [B]
  });
}

/** softmin over members of k rows of B numbers (float64, shifted by the column's min for stability). */
export function softminAggregateArrays(rewards: readonly (readonly number[])[], tau: number): number[] {
  const k = rewards.length;
  const b = k === 0 ? 0 : (rewards[0] as readonly number[]).length;
  return Array.from({ length: b }, (_, i) => {
    const col = rewards.map((row) => row[i] as number);
    const lo = Math.min(...col);
    const meanExp = col.reduce((s, r) => s + Math.exp(-(r - lo) / tau), 0) / k;
    return lo - tau * Math.log(meanExp);
  });
}

/** The `softmin` rule with validated options (τ ≤ 0 or unknown keys throw a ConfigError naming the option). */
export function softminRule(options: Partial<SoftminOptions> = {}): AggregationRule {
  const { tau } = resolveOptions(softminOptions, options, 'aggregation-rule(softmin)');
  return aggregationRule({
    name: 'softmin',
    properties: ['monotone', 'boundedByMinMax', 'translationEquivariant', 'atMostMean'],
    aggregate: (rewards) => softminAggregate(rewards, tau),
    aggregateArrays: (rewards) => softminAggregateArrays(rewards, tau),
  });
}

/** The registry entry: `--agg softmin --agg-opt tau=0.5`, or `["softmin", { "tau": 0.5 }]` in a config. */
export const softminStrategy = defineStrategy({
  name: 'softmin',
  description: 'soft worst case: −τ·log mean exp(−r/τ), between min (τ→0) and mean (τ→∞)',
  source: '@quorum-examples/plugin-warm',
  options: softminOptions,
  create: (options): AggregationRule => softminRule(options),
});
