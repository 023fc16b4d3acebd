/**
 * The built-in rules as registry entries (name, description, option schema with defaults) and as
 * plain factories, plus a registry of them for users without a container.
 */
import {
  defineStrategy,
  resolveOptions,
  type StrategyDefinition,
  StrategyRegistry,
  type StrategySpec,
  type StrategySpecOf,
} from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { AggregationRule } from './aggregation-rule.js';
import {
  aggregationRule,
  medianAggregate,
  medianAggregateArrays,
  minAggregate,
  minAggregateArrays,
} from './rules.js';

const SOURCE = '@quorum/aggregation';

const stdOption = z
  .enum(['population', 'sample'])
  .default('population')
  .describe(
    'divide squared deviations by k (population; k = 1 gives 0) or by k − 1 (sample; k = 1 defined as 0)',
  );

export const meanOptions = z.object({}).strict();
export const minOptions = z.object({}).strict();
export const medianOptions = z.object({}).strict();

/**
 * `beta` default 1: the LCB of Zhang et al. (2024) is mean − β·std with β a user-chosen hyperparameter;
 * 1 is the conventional one-standard-deviation lower bound, and β = 0 recovers `mean`. β < 0 would be an
 * optimistic upper bound (rewarding disagreement), so it is rejected.
 */
export const lcbOptions = z
  .object({
    beta: z
      .number()
      .min(0)
      .default(1)
      .describe('weight of the members’ std subtracted from their mean (≥ 0)'),
    std: stdOption,
  })
  .strict();

/**
 * `lambda` default 0.5: UWO (Coste et al., ICLR 2024) is mean − λ·variance with λ tuned per task; 0.5
 * weighs the variance of rewards of order 1 (Bradley-Terry logits) about like `lcb`'s β = 1 weighs the
 * std at a spread near 0.5. λ = 0 recovers `mean`; λ < 0 is rejected.
 */
export const uwoOptions = z
  .object({
    lambda: z
      .number()
      .min(0)
      .default(0.5)
      .describe('weight of the members’ variance subtracted from their mean (≥ 0)'),
    std: stdOption,
  })
  .strict();

export type LcbOptions = z.output<typeof lcbOptions>;
export type UwoOptions = z.output<typeof uwoOptions>;

/** The members' mean. */
export function meanRule(): AggregationRule {
  return aggregationRule({
    name: 'mean',
    properties: ['monotone', 'boundedByMinMax', 'translationEquivariant', 'atMostMean'],
    aggregate: (_rewards, moments) => tf.clone(moments.mean),
    aggregateArrays: (_rewards, moments) => moments.mean.slice(),
  });
}

/** mean − β·std. Options are validated (unknown keys and β < 0 throw a ConfigError naming the option). */
export function lcbRule(options: Partial<LcbOptions> = {}): AggregationRule {
  const { beta, std } = resolveOptions(lcbOptions, options, 'aggregation-rule(lcb)');
  return aggregationRule({
    name: 'lcb',
    std,
    properties: ['translationEquivariant', 'atMostMean'],
    aggregate: (_rewards, m) => tf.sub(m.mean, tf.mul(tf.sqrt(m.variance), beta)) as tf.Tensor1D, // [B]
    aggregateArrays: (_rewards, m) => m.mean.map((mu, i) => mu - beta * Math.sqrt(m.variance[i] as number)),
  });
}

/** The worst member's reward. */
export function minRule(): AggregationRule {
  return aggregationRule({
    name: 'min',
    properties: ['monotone', 'boundedByMinMax', 'translationEquivariant', 'atMostMean'],
    aggregate: (rewards) => minAggregate(rewards),
    aggregateArrays: (rewards) => minAggregateArrays(rewards),
  });
}

/** mean − λ·variance. */
export function uwoRule(options: Partial<UwoOptions> = {}): AggregationRule {
  const { lambda, std } = resolveOptions(uwoOptions, options, 'aggregation-rule(uwo)');
  return aggregationRule({
    name: 'uwo',
    std,
    properties: ['translationEquivariant', 'atMostMean'],
    aggregate: (_rewards, m) => tf.sub(m.mean, tf.mul(m.variance, lambda)) as tf.Tensor1D, // [B]
    aggregateArrays: (_rewards, m) => m.mean.map((mu, i) => mu - lambda * (m.variance[i] as number)),
  });
}

/** The members' median (mean of the two middle rewards when k is even). */
export function medianRule(): AggregationRule {
  return aggregationRule({
    name: 'median',
    properties: ['monotone', 'boundedByMinMax', 'translationEquivariant'],
    aggregate: (rewards) => medianAggregate(rewards),
    aggregateArrays: (rewards) => medianAggregateArrays(rewards),
  });
}

/** The built-in rules, each typed by its name and option schema (see `BuiltinRuleSpec`). */
export const builtinAggregationRules = [
  defineStrategy({
    name: 'mean',
    description: 'the members’ mean reward',
    source: SOURCE,
    options: meanOptions,
    create: () => meanRule(),
  }),
  defineStrategy({
    name: 'lcb',
    description: 'lower confidence bound: mean − β·std (Zhang et al. 2024)',
    source: SOURCE,
    options: lcbOptions,
    create: (o) => lcbRule(o),
  }),
  defineStrategy({
    name: 'min',
    description: 'worst case: the lowest member reward (Coste et al. 2024, WCO)',
    source: SOURCE,
    options: minOptions,
    create: () => minRule(),
  }),
  defineStrategy({
    name: 'uwo',
    description: 'uncertainty-weighted: mean − λ·variance (Coste et al. 2024)',
    source: SOURCE,
    options: uwoOptions,
    create: (o) => uwoRule(o),
  }),
  defineStrategy({
    name: 'median',
    description: 'the members’ median reward',
    source: SOURCE,
    options: medianOptions,
    create: () => medianRule(),
  }),
] as const;

/** A config entry naming a built-in rule, typed: `"lcb"` or `["lcb", { beta: 2 }]`. */
export type BuiltinRuleSpec = StrategySpecOf<(typeof builtinAggregationRules)[number]>;

/** A registry of the built-in rules plus `extra` definitions (e.g. a plugin's), without a container. */
export function aggregationRegistry(
  extra: readonly StrategyDefinition<AggregationRule>[] = [],
): StrategyRegistry<AggregationRule> {
  const registry = new StrategyRegistry<AggregationRule>(AggregationRule);
  for (const d of [...builtinAggregationRules, ...extra]) registry.register(d);
  return registry;
}

/**
 * Creates a rule from a config entry, `"lcb"` or `["lcb", { "beta": 2 }]`, over the built-ins (or the
 * given registry). Unknown names list the registered ones; bad options name the option path.
 */
export function createAggregationRule(spec: BuiltinRuleSpec): AggregationRule;
export function createAggregationRule(
  spec: StrategySpec,
  registry: StrategyRegistry<AggregationRule>,
): AggregationRule;
export function createAggregationRule(
  spec: StrategySpec,
  registry: StrategyRegistry<AggregationRule> = aggregationRegistry(),
): AggregationRule {
  return registry.create(spec);
}
