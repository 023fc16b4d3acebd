import { type ContainerModule, strategyModule } from '@quorum/core';
import { AggregationRule } from './aggregation-rule.js';
import { builtinAggregationRules } from './builtins.js';

/** Aggregation's ContainerModule: owns the `aggregation-rule` point and contributes the built-in rules. */
export function aggregationModule(): ContainerModule {
  return strategyModule({
    points: [AggregationRule],
    strategies: [{ point: AggregationRule, definitions: builtinAggregationRules }],
  });
}
