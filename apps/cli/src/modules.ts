/**
 * The built-in ContainerModules the CLI loads before any plugin. Every package that owns an extension
 * point or contributes strategies is listed here; plugins add theirs with --plugin.
 */
import { type ContainerModule, coreModule } from '@quorum/core';

export function builtinModules(): ContainerModule[] {
  return [coreModule()];
}

/** Packages whose versions `quorum info` reports. */
export const QUORUM_PACKAGES = [
  '@quorum/core',
  '@quorum/data',
  '@quorum/backbone',
  '@quorum/heads',
  '@quorum/lora',
  '@quorum/aggregation',
  '@quorum/ensemble',
  '@quorum/best-of-n',
  '@quorum/ppo',
  '@quorum/eval',
  '@quorum/kernels-native',
  '@quorum/cli',
] as const;
