/**
 * @quorum-examples/plugin-warm: a WARM ensemble architecture (`warm`) and a soft worst-case aggregation
 * rule (`softmin`), written against Quorum's public APIs only.
 *
 *   quorum info --plugin examples/plugin-warm
 *
 * The default export is the plugin's ContainerModule (what `--plugin` loads); the named exports work
 * without a container.
 */
import { warmPluginModule } from './plugin.js';

export { warmPluginModule } from './plugin.js';
export {
  type SoftminOptions,
  softminAggregate,
  softminAggregateArrays,
  softminOptions,
  softminRule,
  softminStrategy,
} from './softmin.js';
export { averageWeights, buildWarm, type WarmOptions, warmOptions, warmStrategy } from './warm.js';

export default warmPluginModule();
