/**
 * LoRA's config: one typed object, the reason beside each default. `resolveLoraConfig` validates user
 * input (ConfigError naming the field); the helpers below say which (layer, module) sites carry an
 * adapter and how many parameters one member's adapter holds (the paper's A).
 */
import { type GptConfig, gptParameterShapes, type LinearModule } from '@quorum/backbone';
import { ConfigError, resolveOptions } from '@quorum/core';
import { z } from 'zod';

/**
 * Every linear layer a block may have, in forward order: attention q/k/v/o, then the MLP's `gate` (SwiGLU
 * models only), `fc` (SwiGLU's up) and `proj` (down). A model has a subset: `modelLoraModules`.
 */
export const LORA_MODULES = [
  'q',
  'k',
  'v',
  'o',
  'gate',
  'fc',
  'proj',
] as const satisfies readonly LinearModule[];

/** A LoRA target: one of the backbone's linear layers. */
export type LoraTarget = (typeof LORA_MODULES)[number];

// LORA_MODULES names every linear layer the backbone hooks (a compile error here when the backbone gains one).
const everyModuleListed: Exclude<LinearModule, LoraTarget> extends never ? true : never = true;
void everyModuleListed;

/** PEFT's `target_modules="all-linear"`: every linear layer of the model's blocks (not the LM head). */
export const ALL_LINEAR = 'all-linear';

export const loraConfigSchema = z
  .object({
    // The paper's LoRA rank (Table 3) and PEFT's default: enough capacity for a reward member, a few % of the model.
    rank: z.number().int().min(1).default(8),
    // alpha = 2·rank, the common pairing: the update is scaled by alpha/rank = 2 whatever the rank.
    alpha: z.number().positive().default(16),
    // Tiny models trained for minutes do not overfit enough to need it; members already differ by seed and data.
    dropout: z.number().min(0).max(0.9).default(0),
    // Attention and MLP, as the issue asks: adapting every linear layer gives the most diverse members per
    // parameter. 'all-linear' (PEFT's name) is every linear layer the model has: q k v o fc proj for the Quorum
    // GPT and GPT-2/NeoX, q k v o gate fc proj (PEFT's q,k,v,o,gate,up,down) for SwiGLU models (Llama, Qwen2).
    targets: z.union([z.literal(ALL_LINEAR), z.array(z.enum(LORA_MODULES)).min(1)]).default(ALL_LINEAR),
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
  if (config.targets === ALL_LINEAR) return config;
  const listed: readonly LoraTarget[] = config.targets;
  const unique = [...new Set(listed)];
  if (unique.length !== listed.length) {
    throw new ConfigError(`targets lists a module twice: ${listed.join(', ')}`, {
      location: { field: path === '' ? 'targets' : `${path}.targets` },
      hint: `name each of ${LORA_MODULES.join(', ')} at most once`,
    });
  }
  // A stable order (forward order), whatever order the user wrote.
  return { ...config, targets: LORA_MODULES.filter((m) => unique.includes(m)) };
}

/** The linear layers a model's blocks have, in forward order (`gate` only for SwiGLU). */
export function modelLoraModules(gpt: GptConfig): LoraTarget[] {
  const shapes = gptParameterShapes(gpt);
  return LORA_MODULES.filter((m) => `${sitePrefix(0, m)}.w` in shapes);
}

/**
 * The modules a config adapts on a model: `'all-linear'` → every linear layer it has; a list → the list,
 * each of which the model must have (else a ConfigError naming the target and the model's modules).
 */
export function loraTargets(gpt: GptConfig, lora: LoraConfig): LoraTarget[] {
  const available = modelLoraModules(gpt);
  if (lora.targets === ALL_LINEAR) return available;
  const missing = lora.targets.filter((m) => !available.includes(m));
  if (missing.length > 0) {
    const which = missing.map((m) => `"${m}"`).join(', ');
    throw new ConfigError(
      `target${missing.length > 1 ? 's' : ''} ${which} ${missing.length > 1 ? 'are' : 'is'} not a layer of this model; its linear layers are ${available.join(', ')}`,
      {
        location: { field: 'targets' },
        hint:
          missing.includes('gate') && gpt.mlp !== 'swiglu'
            ? `"gate" exists only in SwiGLU models (mlp "swiglu"); target some of ${available.join(', ')}, or '${ALL_LINEAR}'`
            : `target some of ${available.join(', ')}, or '${ALL_LINEAR}'`,
      },
    );
  }
  return [...lora.targets];
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
  readonly module: LoraTarget;
  readonly inDim: number;
  readonly outDim: number;
}

/** The base weight's stable name prefix of a site: `h.<l>.attn.q`, `h.<l>.mlp.gate`, `h.<l>.mlp.fc`. */
export function sitePrefix(layer: number, module: LoraTarget): string {
  return `h.${layer}.${module === 'gate' || module === 'fc' || module === 'proj' ? 'mlp' : 'attn'}.${module}`;
}

/**
 * [in, out] of a module's base weight, read from the backbone's `gptParameterShapes`: q [D, H·Dh], k and v
 * [D, Hkv·Dh] (grouped-query attention), o [H·Dh, D], gate and fc [D, F], proj [F, D].
 */
export function moduleShape(gpt: GptConfig, module: LoraTarget): [number, number] {
  const shape = gptParameterShapes(gpt)[`${sitePrefix(0, module)}.w`];
  if (shape === undefined) {
    throw new ConfigError(
      `target "${module}" is not a layer of this model; its linear layers are ${modelLoraModules(gpt).join(', ')}`,
      { location: { field: 'targets' }, hint: `target one of ${modelLoraModules(gpt).join(', ')}` },
    );
  }
  return [shape[0] as number, shape[1] as number];
}

/** Every adapted site, layer by layer in forward order. */
export function adaptedSites(gpt: GptConfig, lora: LoraConfig): LoraSite[] {
  const targets = loraTargets(gpt, lora);
  const shapes = gptParameterShapes(gpt);
  const sites: LoraSite[] = [];
  for (let l = firstAdaptedLayer(gpt, lora); l < gpt.nLayers; l++) {
    for (const module of targets) {
      const [inDim, outDim] = shapes[`${sitePrefix(l, module)}.w`] as [number, number];
      sites.push({ layer: l, module, inDim, outDim });
    }
  }
  return sites;
}

/** Scalar parameters of ONE member's adapter (A and B of every site): the paper's A. */
export function adapterParamCount(gpt: GptConfig, lora: LoraConfig): number {
  return adaptedSites(gpt, lora).reduce((n, s) => n + lora.rank * (s.inDim + s.outDim), 0);
}
