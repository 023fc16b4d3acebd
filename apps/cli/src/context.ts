/**
 * What every command starts from: the project config, the container with built-in modules and plugins,
 * one registry per extension point, and (when the command computes) the active backend.
 */

import { AggregationRule } from '@quorum/aggregation';
import {
  type ActiveBackend,
  ComputeBackend,
  type Container,
  collectRegistries,
  createQuorumContainer,
  initCompute,
  requireRegistry,
  type StrategyRegistry,
} from '@quorum/core';
import { EnsembleArchitecture } from '@quorum/ensemble';
import { Judge, type JudgeContext } from '@quorum/eval';
import { readProjectConfig } from './config-file.js';
import { builtinModules } from './modules.js';
import { type LoadedPlugin, loadPlugin } from './plugins.js';

/** Options every command accepts. */
export interface GlobalOptions {
  plugin?: string[];
  backend?: string;
  config?: string;
}

export interface CliContext {
  readonly container: Container;
  readonly registries: ReadonlyMap<string, StrategyRegistry<unknown, unknown>>;
  readonly plugins: readonly LoadedPlugin[];
  readonly configFile: string | undefined;
  readonly backendName: string | undefined;
}

export async function createContext(
  globals: GlobalOptions,
  cwd: string = process.cwd(),
): Promise<CliContext> {
  const config = readProjectConfig(globals.config, cwd);
  const specs = [...config.plugins, ...(globals.plugin ?? [])];
  const plugins: LoadedPlugin[] = [];
  for (const spec of specs) plugins.push(await loadPlugin(spec, cwd));
  const container = createQuorumContainer([...builtinModules(), ...plugins.map((p) => p.module)]);
  const registries = collectRegistries(container);
  return {
    container,
    registries,
    plugins,
    configFile: config.file,
    backendName: globals.backend ?? config.backend,
  };
}

/** Activates the compute backend named by --backend, the config, or QUORUM_BACKEND (else the best available). */
export async function startCompute(ctx: CliContext): Promise<ActiveBackend> {
  return initCompute({ registry: requireRegistry(ctx.registries, ComputeBackend), backend: ctx.backendName });
}

/** The registry of ensemble architectures (built-ins and plugins'). */
export function architectureRegistry(ctx: CliContext): StrategyRegistry<EnsembleArchitecture> {
  return requireRegistry(ctx.registries, EnsembleArchitecture);
}

/** The registry of aggregation rules (built-ins and plugins'). */
export function ruleRegistry(ctx: CliContext): StrategyRegistry<AggregationRule> {
  return requireRegistry(ctx.registries, AggregationRule);
}

/** The registry of judges (built-ins and plugins'). */
export function judgeRegistry(ctx: CliContext): StrategyRegistry<Judge, JudgeContext> {
  return requireRegistry(ctx.registries, Judge);
}
