/** The plugin's ContainerModule: contributes `warm` to ensemble-architecture and `softmin` to aggregation-rule. */
import { AggregationRule } from '@quorum/aggregation';
import { type ContainerModule, strategyModule } from '@quorum/core';
import { EnsembleArchitecture } from '@quorum/ensemble';
import { softminStrategy } from './softmin.js';
import { warmStrategy } from './warm.js';

/**
 * A new ContainerModule with the plugin's strategies. It declares no extension point: both points belong
 * to the packages that own them (@quorum/ensemble, @quorum/aggregation), whose modules the CLI loads first.
 */
export function warmPluginModule(): ContainerModule {
  return strategyModule({
    strategies: [
      { point: EnsembleArchitecture, definitions: [warmStrategy] },
      { point: AggregationRule, definitions: [softminStrategy] },
    ],
  });
}
