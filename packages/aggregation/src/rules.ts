/**
 * The built-in aggregation rules as plain functions, on tensors (`[k, B]` → `[B]`) and on arrays
 * (k × B → B), plus `aggregationRule`, which turns such a pair into an `AggregationRule`.
 *
 * Spread: `std: 'population'` divides the squared deviations by k, `'sample'` by k − 1. With one member
 * the sample std is undefined (0/0); Quorum defines it as 0, so k = 1 never gives NaN and every rule
 * then returns that member's reward.
 */
import * as tf from '@tensorflow/tfjs';
import {
  type AggregateResult,
  type AggregationProperty,
  type AggregationRule,
  type ArrayAggregateResult,
  checkRewardsArrays,
  checkRewardsTensor,
} from './aggregation-rule.js';

/** Which std (and variance) the members' spread uses: divide by k (`population`) or k − 1 (`sample`). */
export type StdMode = 'population' | 'sample';

/** The members' mean and variance per item, as tensors. */
export interface MemberMoments {
  /** `[B]` */
  readonly mean: tf.Tensor1D;
  /** `[B]`, population or sample as asked; 0 when k = 1. */
  readonly variance: tf.Tensor1D;
}

/** The members' mean and variance per item, as arrays of B numbers. */
export interface MemberMomentsArrays {
  readonly mean: number[];
  readonly variance: number[];
}

/** Mean and variance over the member axis. The caller disposes both tensors. */
export function memberMoments(rewards: tf.Tensor2D, std: StdMode = 'population'): MemberMoments {
  return tf.tidy(() => {
    const k = rewards.shape[0];
    const { mean, variance } = tf.moments(rewards, 0); // [B], [B] (population)
    const scaled = std === 'sample' && k > 1 ? tf.mul(variance, k / (k - 1)) : variance; // [B]
    return { mean: mean as tf.Tensor1D, variance: scaled as tf.Tensor1D };
  });
}

/** Mean and variance over the member axis of k rows of B numbers (computed in float64). */
export function memberMomentsArrays(
  rewards: readonly (readonly number[])[],
  std: StdMode = 'population',
): MemberMomentsArrays {
  const k = rewards.length;
  const b = k === 0 ? 0 : (rewards[0] as readonly number[]).length;
  const mean = new Array<number>(b).fill(0);
  const variance = new Array<number>(b).fill(0);
  for (let i = 0; i < b; i++) {
    let sum = 0;
    for (let m = 0; m < k; m++) sum += (rewards[m] as readonly number[])[i] as number;
    const mu = sum / k;
    let sq = 0;
    for (let m = 0; m < k; m++) {
      const d = ((rewards[m] as readonly number[])[i] as number) - mu;
      sq += d * d;
    }
    mean[i] = mu;
    variance[i] = std === 'sample' ? (k > 1 ? sq / (k - 1) : 0) : sq / k;
  }
  return { mean, variance };
}

function column(rewards: readonly (readonly number[])[], i: number): number[] {
  return rewards.map((row) => row[i] as number);
}

// ---- tensor rules: [k, B] → [B] -------------------------------------------------------------

/** The members' mean. */
export function meanAggregate(rewards: tf.Tensor2D): tf.Tensor1D {
  return tf.mean(rewards, 0); // [B]
}

/** The worst member: min over members. */
export function minAggregate(rewards: tf.Tensor2D): tf.Tensor1D {
  return tf.min(rewards, 0); // [B]
}

/** Lower confidence bound: mean − β·std. */
export function lcbAggregate(rewards: tf.Tensor2D, options: { beta: number; std: StdMode }): tf.Tensor1D {
  return tf.tidy(() => {
    const { mean, variance } = memberMoments(rewards, options.std); // [B], [B]
    return tf.sub(mean, tf.mul(tf.sqrt(variance), options.beta)) as tf.Tensor1D; // [B]
  });
}

/** Uncertainty-weighted optimisation (Coste et al. 2024): mean − λ·variance. */
export function uwoAggregate(rewards: tf.Tensor2D, options: { lambda: number; std: StdMode }): tf.Tensor1D {
  return tf.tidy(() => {
    const { mean, variance } = memberMoments(rewards, options.std); // [B], [B]
    return tf.sub(mean, tf.mul(variance, options.lambda)) as tf.Tensor1D; // [B]
  });
}

/** The members' median; for even k the mean of the two middle rewards (as numpy, not torch's lower one). */
export function medianAggregate(rewards: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const [k, b] = rewards.shape;
    if (k === 1) return tf.reshape(rewards, [b]) as tf.Tensor1D; // [B]
    const sorted = tf.topk(tf.transpose(rewards), k, true).values; // [B, k], descending
    const lo = Math.floor((k - 1) / 2);
    const hi = Math.floor(k / 2);
    const middle = tf.slice(sorted, [0, lo], [b, hi - lo + 1]); // [B, 1 or 2]
    return tf.mean(middle, 1) as tf.Tensor1D; // [B]
  });
}

// ---- array rules: k × B → B -------------------------------------------------------------------

export function meanAggregateArrays(rewards: readonly (readonly number[])[]): number[] {
  return memberMomentsArrays(rewards).mean;
}

export function minAggregateArrays(rewards: readonly (readonly number[])[]): number[] {
  const b = rewards.length === 0 ? 0 : (rewards[0] as readonly number[]).length;
  return Array.from({ length: b }, (_, i) => Math.min(...column(rewards, i)));
}

export function lcbAggregateArrays(
  rewards: readonly (readonly number[])[],
  options: { beta: number; std: StdMode },
): number[] {
  const { mean, variance } = memberMomentsArrays(rewards, options.std);
  return mean.map((mu, i) => mu - options.beta * Math.sqrt(variance[i] as number));
}

export function uwoAggregateArrays(
  rewards: readonly (readonly number[])[],
  options: { lambda: number; std: StdMode },
): number[] {
  const { mean, variance } = memberMomentsArrays(rewards, options.std);
  return mean.map((mu, i) => mu - options.lambda * (variance[i] as number));
}

export function medianAggregateArrays(rewards: readonly (readonly number[])[]): number[] {
  const b = rewards.length === 0 ? 0 : (rewards[0] as readonly number[]).length;
  return Array.from({ length: b }, (_, i) => {
    const sorted = column(rewards, i).sort((x, y) => x - y);
    const n = sorted.length;
    return n % 2 === 1
      ? (sorted[(n - 1) / 2] as number)
      : ((sorted[n / 2 - 1] as number) + (sorted[n / 2] as number)) / 2;
  });
}

// ---- rule objects ---------------------------------------------------------------------------

/** A rule as a pair of plain functions; `aggregationRule` adds validation, the spread and disposal. */
export interface AggregationRuleSpec {
  readonly name: string;
  readonly properties?: readonly AggregationProperty[];
  /** Which std the result's `std` (and the moments passed in) use. Default `population`. */
  readonly std?: StdMode;
  /** `[k, B]` → `[B]`. Runs inside `tf.tidy`; `moments` are the members' mean and variance (`std` mode). */
  aggregate(rewards: tf.Tensor2D, moments: MemberMoments): tf.Tensor1D;
  /** k × B → B, the same rule on plain numbers. */
  aggregateArrays(rewards: readonly (readonly number[])[], moments: MemberMomentsArrays): number[];
}

/**
 * Builds an `AggregationRule` from plain functions: checks shapes, computes the members' mean and std
 * once, keeps a handle on the member rewards, and returns tensors the caller owns. Plugins may use it.
 */
export function aggregationRule(spec: AggregationRuleSpec): AggregationRule {
  const stdMode = spec.std ?? 'population';
  return {
    name: spec.name,
    properties: spec.properties ?? [],
    aggregate(rewards: tf.Tensor2D): AggregateResult {
      checkRewardsTensor(rewards, spec.name);
      return tf.tidy(() => {
        const moments = memberMoments(rewards, stdMode); // [B], [B]
        const aggregate = spec.aggregate(rewards, moments); // [B]
        const std = tf.sqrt(moments.variance) as tf.Tensor1D; // [B]
        const members = tf.clone(rewards); // [k, B], shares the input's data
        return { aggregate, mean: moments.mean, std, members };
      });
    },
    aggregateArrays(rewards: readonly (readonly number[])[]): ArrayAggregateResult {
      checkRewardsArrays(rewards, spec.name);
      const moments = memberMomentsArrays(rewards, stdMode);
      const aggregate = spec.aggregateArrays(rewards, moments);
      return { aggregate, mean: moments.mean, std: moments.variance.map(Math.sqrt) };
    },
  };
}
