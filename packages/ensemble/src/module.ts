/** The ensemble package's strategies: the four built-in architectures, each a plugin like any other. */
import { type ContainerModule, defineStrategy, StrategyRegistry, strategyModule } from '@quorum/core';
import { z } from 'zod';
import { EnsembleArchitecture } from './architecture.js';
import { buildIndependent } from './architectures/independent.js';
import { buildLora, loraArchitectureOptions } from './architectures/lora.js';
import { buildSharedTrunk } from './architectures/shared-trunk.js';

const noOptions = z.object({}).strict();
const SOURCE = '@quorum/ensemble';

export const singleArchitecture = defineStrategy({
  name: 'single',
  description: 'one transformer + one head (the baseline; k = 1)',
  source: SOURCE,
  options: noOptions,
  create: (): EnsembleArchitecture => ({
    name: 'single',
    build: (ctx) => buildSharedTrunk('single', ctx),
    expectedParamCounts: ({ M, L }) => ({ total: M + L }),
  }),
});

export const independentArchitecture = defineStrategy({
  name: 'independent',
  description: 'k full reward models, own seeds and data orders: k(M+L) parameters',
  source: SOURCE,
  options: noOptions,
  create: (): EnsembleArchitecture => ({
    name: 'independent',
    build: buildIndependent,
    expectedParamCounts: ({ M, L, k }) => ({ total: k * (M + L) }),
  }),
});

export const linearHeadsArchitecture = defineStrategy({
  name: 'linear-heads',
  description: 'one shared transformer, k linear heads trained together: M+kL parameters',
  source: SOURCE,
  options: noOptions,
  create: (): EnsembleArchitecture => ({
    name: 'linear-heads',
    build: (ctx) => buildSharedTrunk('linear-heads', ctx),
    expectedParamCounts: ({ M, L, k }) => ({ total: M + k * L }),
  }),
});

export const loraArchitecture = defineStrategy({
  name: 'lora',
  description:
    'one shared transformer, k LoRA adapters + heads (phase 1 trunk, phase 2 adapters): M+kL+kA parameters',
  source: SOURCE,
  options: loraArchitectureOptions,
  create: (options): EnsembleArchitecture => ({
    name: 'lora',
    build: (ctx) => buildLora(ctx, options),
    expectedParamCounts: ({ M, L, A, k }) => ({ total: M + k * L + k * A }),
  }),
});

export const builtinArchitectures = [
  singleArchitecture,
  independentArchitecture,
  linearHeadsArchitecture,
  loraArchitecture,
] as const;

export function ensembleModule(): ContainerModule {
  return strategyModule({
    points: [EnsembleArchitecture],
    strategies: [{ point: EnsembleArchitecture, definitions: builtinArchitectures }],
  });
}

/** A registry of the built-in architectures, for use without a container. */
export function builtinArchitectureRegistry(): StrategyRegistry<EnsembleArchitecture> {
  const registry = new StrategyRegistry<EnsembleArchitecture>(EnsembleArchitecture);
  for (const d of builtinArchitectures) registry.register(d);
  return registry;
}
