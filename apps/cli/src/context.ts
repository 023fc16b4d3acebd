/**
 * What every command starts from: the project config, the container with built-in modules and plugins,
 * one registry per extension point, and (when the command computes) the active backend.
 */

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
  readonly registries: Map<string, StrategyRegistry<unknown>>;
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
