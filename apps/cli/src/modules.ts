/**
 * The built-in ContainerModules the CLI loads before any plugin. Every package that owns an extension
 * point or contributes strategies is listed here; plugins add theirs with --plugin.
 */
import { aggregationModule } from '@quorum/aggregation';
import { type ContainerModule, coreModule } from '@quorum/core';
import { dataModule } from '@quorum/data';
import { ensembleModule } from '@quorum/ensemble';
import { evalModule } from '@quorum/eval';
import { kernelsNativeModule } from '@quorum/kernels-native';

export function builtinModules(): ContainerModule[] {
  return [
    coreModule(),
    kernelsNativeModule(),
    dataModule(),
    aggregationModule(),
    ensembleModule(),
    evalModule(),
  ];
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
  '@quorum/runs',
  '@quorum/kernels-native',
  '@quorum/cli',
] as const;
