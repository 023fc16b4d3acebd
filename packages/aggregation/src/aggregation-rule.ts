/**
 * The `AggregationRule` extension point: turns the k members' rewards for a batch into one reward per
 * item. Owned by @quorum/aggregation; a plugin contributes more rules through the registry.
 */
import { defineExtensionPoint, QuorumError } from '@quorum/core';
import type * as tf from '@tensorflow/tfjs';

/**
 * What a rule returns for a `[k, B]` batch. The caller owns all four tensors and disposes them
 * (`disposeAggregateResult`); the input tensor stays the caller's and is neither changed nor disposed.
 */
export interface AggregateResult {
  /** The aggregated reward per item. `[B]` */
  readonly aggregate: tf.Tensor1D;
  /** The members' mean per item. `[B]` */
  readonly mean: tf.Tensor1D;
  /** The members' spread per item, population std unless the rule says otherwise (k = 1 → 0). `[B]` */
  readonly std: tf.Tensor1D;
  /** The per-member rewards, kept for reports (a new handle on the input's data). `[k, B]` */
  readonly members: tf.Tensor2D;
}

/** The array twin of `AggregateResult` (for streaming scoring and reports). Each array has B entries. */
export interface ArrayAggregateResult {
  readonly aggregate: number[];
  readonly mean: number[];
  readonly std: number[];
}

/**
 * Properties a rule may claim; the contract suite (`@quorum/aggregation/testing`) checks each one claimed.
 * - `monotone`: raising one member's reward never lowers the aggregate.
 * - `boundedByMinMax`: min over members ≤ aggregate ≤ max over members.
 * - `translationEquivariant`: adding c to every member adds c to the aggregate.
 * - `atMostMean`: aggregate ≤ the members' mean (a pessimistic rule).
 */
export type AggregationProperty = 'monotone' | 'boundedByMinMax' | 'translationEquivariant' | 'atMostMean';

export const AGGREGATION_PROPERTIES: readonly AggregationProperty[] = [
  'monotone',
  'boundedByMinMax',
  'translationEquivariant',
  'atMostMean',
];

/** An aggregation rule, as created by a registry entry from its resolved options. */
export interface AggregationRule {
  /** The registry name, e.g. `lcb`. */
  readonly name: string;
  /** Properties the rule claims; the contract suite checks them. */
  readonly properties: readonly AggregationProperty[];
  /**
   * Called when a batch is scored: `rewards` is `[k, B]` (members first). Returns new tensors the caller
   * disposes; leaves `rewards` untouched.
   */
  aggregate(rewards: tf.Tensor2D): AggregateResult;
  /**
   * Called when rewards are already plain numbers (streaming `score`, reports): `rewards[m][i]` is member
   * m's reward for item i (k × B). Agrees with `aggregate` up to float32 rounding.
   */
  aggregateArrays(rewards: readonly (readonly number[])[]): ArrayAggregateResult;
}

export const AggregationRule = defineExtensionPoint<AggregationRule>(
  'AggregationRule',
  'aggregation-rule',
  'how the k members’ rewards [k, B] become one reward per item [B] (mean, lcb, min, uwo, median, …)',
);

/** Disposes the tensors of a result. */
export function disposeAggregateResult(result: AggregateResult): void {
  result.aggregate.dispose();
  result.mean.dispose();
  result.std.dispose();
  result.members.dispose();
}

/** Throws unless `rewards` is a `[k, B]` tensor with k ≥ 1. */
export function checkRewardsTensor(rewards: tf.Tensor, rule: string): void {
  if (rewards.rank !== 2 || (rewards.shape[0] as number) < 1) {
    throw new QuorumError(
      `aggregation rule "${rule}" needs rewards of shape [k, B] with k ≥ 1 members, got shape [${rewards.shape.join(', ')}]`,
      { code: 'E_SHAPE', hint: 'stack the members first: tf.stack(memberRewards) gives [k, B]' },
    );
  }
}

/** Throws unless `rewards` is k ≥ 1 rows of equal length B. Returns [k, B]. */
export function checkRewardsArrays(rewards: readonly (readonly number[])[], rule: string): [number, number] {
  const k = rewards.length;
  if (k < 1) {
    throw new QuorumError(`aggregation rule "${rule}" needs at least one member's rewards, got none`, {
      code: 'E_SHAPE',
      hint: 'pass rewards as k rows (one per member) of B numbers',
    });
  }
  const b = (rewards[0] as readonly number[]).length;
  for (let m = 1; m < k; m++) {
    const len = (rewards[m] as readonly number[]).length;
    if (len !== b) {
      throw new QuorumError(
        `aggregation rule "${rule}": member ${m} has ${len} rewards but member 0 has ${b}; every member needs one per item`,
        { code: 'E_SHAPE', hint: 'pass rewards as k rows (one per member) of B numbers' },
      );
    }
  }
  return [k, b];
}
