/**
 * LoRA's config: one typed object, the reason beside each default. `resolveLoraConfig` validates user
 * input (ConfigError naming the field); the helpers below say which (layer, module) sites carry an
 * adapter and how many parameters one member's adapter holds (the paper's A).
 */
import type { GptConfig, LinearModule } from '@quorum/backbone';
import { ConfigError, resolveOptions } from '@quorum/core';
import { z } from 'zod';

/** Every linear layer of a block, in forward order: attention q/k/v/o, then the MLP's fc and proj. */
export const LORA_MODULES: readonly LinearModule[] = ['q', 'k', 'v', 'o', 'fc', 'proj'];

export const loraConfigSchema = z
  .object({
    // The paper's LoRA rank (Table 3) and PEFT's default: enough capacity for a reward member, a few % of the model.
    rank: z.number().int().min(1).default(8),
    // alpha = 2·rank, the common pairing: the update is scaled by alpha/rank = 2 whatever the rank.
    alpha: z.number().positive().default(16),
    // Tiny models trained for minutes do not overfit enough to need it; members already differ by seed and data.
    dropout: z.number().min(0).max(0.9).default(0),
    // Attention and MLP, as the issue asks: adapting every linear layer gives the most diverse members per parameter.
    targets: z
      .array(z.enum(['q', 'k', 'v', 'o', 'fc', 'proj']))
      .min(1)
      .default(['q', 'k', 'v', 'o', 'fc', 'proj']),
    // Every block by default (the paper); `{ top: N }` adapts only the top N blocks, so the blocks below run once
    // for the whole ensemble (shared activations save compute, not only memory).
    layers: z.union([z.literal('all'), z.object({ top: z.number().int().min(1) }).strict()]).default('all'),
  })
  .strict();

export type LoraConfigInput = z.input<typeof loraConfigSchema>;
export type LoraConfig = z.output<typeof loraConfigSchema>;

/** Validates and completes a config. `path` prefixes the field in error messages (e.g. `lora`). */
export function resolveLoraConfig(input: unknown, path = ''): LoraConfig {
  const config = resolveOptions(loraConfigSchema, input, path);
  const unique = [...new Set(config.targets)];
  if (unique.length !== config.targets.length) {
    throw new ConfigError(`targets lists a module twice: ${config.targets.join(', ')}`, {
      location: { field: path === '' ? 'targets' : `${path}.targets` },
      hint: `name each of ${LORA_MODULES.join(', ')} at most once`,
    });
  }
  // A stable order (forward order), whatever order the user wrote.
  return { ...config, targets: LORA_MODULES.filter((m) => unique.includes(m)) };
}

/**
 * Index of the lowest block that carries adapters: 0 for `'all'`, nLayers − N for `{ top: N }`. Pass it as
 * `expand.atLayer` to the backbone so the blocks below run once for every member.
 */
export function firstAdaptedLayer(gpt: GptConfig, lora: LoraConfig): number {
  if (lora.layers === 'all') return 0;
  const top = lora.layers.top;
  if (top > gpt.nLayers) {
    throw new ConfigError(`layers.top ${top} exceeds the model's ${gpt.nLayers} layers`, {
      location: { field: 'layers.top' },
      hint: `use at most { top: ${gpt.nLayers} }, or 'all'`,
    });
  }
  return gpt.nLayers - top;
}

/** One adapted linear layer: where it is and its base weight's [in, out]. */
export interface LoraSite {
  readonly layer: number;
  readonly module: LinearModule;
  readonly inDim: number;
  readonly outDim: number;
}

/** The base weight's stable name prefix of a site: `h.<l>.attn.q`, `h.<l>.mlp.fc`. */
export function sitePrefix(layer: number, module: LinearModule): string {
  return `h.${layer}.${module === 'fc' || module === 'proj' ? 'mlp' : 'attn'}.${module}`;
}

/** [in, out] of a module's base weight. */
export function moduleShape(gpt: GptConfig, module: LinearModule): [number, number] {
  const D = gpt.dModel;
  const F = gpt.mlpRatio * D;
  if (module === 'fc') return [D, F];
  if (module === 'proj') return [F, D];
  return [D, D];
}

/** Every adapted site, layer by layer in forward order. */
export function adaptedSites(gpt: GptConfig, lora: LoraConfig): LoraSite[] {
  const sites: LoraSite[] = [];
  for (let l = firstAdaptedLayer(gpt, lora); l < gpt.nLayers; l++) {
    for (const module of lora.targets) {
      const [inDim, outDim] = moduleShape(gpt, module);
      sites.push({ layer: l, module, inDim, outDim });
    }
  }
  return sites;
}

/** Scalar parameters of ONE member's adapter (A and B of every site): the paper's A. */
export function adapterParamCount(gpt: GptConfig, lora: LoraConfig): number {
  return adaptedSites(gpt, lora).reduce((n, s) => n + lora.rank * (s.inDim + s.outDim), 0);
}
