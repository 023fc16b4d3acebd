/**
 * The transformer's config: one typed object, the reason beside each default, named size presets
 * and their parameter counts. `resolveGptConfig` validates user input (ConfigError naming the field).
 */
import { ConfigError, resolveOptions } from '@quorum/core';
import { z } from 'zod';

export type Positional = 'learned' | 'rope';

export interface GptConfig {
  /** Token ids are in [0, vocabSize). */
  readonly vocabSize: number;
  /** Longest sequence the model reads (size of the learned position table). */
  readonly contextLength: number;
  /** Width of the residual stream D. */
  readonly dModel: number;
  readonly nLayers: number;
  /** Attention heads; dModel must divide evenly into them. */
  readonly nHeads: number;
  /** MLP hidden width = mlpRatio × dModel. */
  readonly mlpRatio: number;
  /** Dropout on embeddings, attention probabilities and residual branches (training only). */
  readonly dropout: number;
  readonly positional: Positional;
  readonly layerNormEps: number;
  /** The LM head reuses the token embedding (wte) instead of its own [V, D] matrix. */
  readonly tieEmbeddings: boolean;
}

export const gptConfigSchema = z
  .object({
    // The project's compacted GPT-2 vocabulary keeps the 4096 most frequent ids of the shipped data.
    vocabSize: z.number().int().min(2).default(4096),
    // 128 tokens hold an instruction plus a short answer; attention cost grows with its square.
    contextLength: z.number().int().min(1).default(128),
    // The nano model: small enough for unit tests and a two-minute SFT run on 2 cores.
    dModel: z.number().int().min(1).default(64),
    nLayers: z.number().int().min(1).default(2),
    nHeads: z.number().int().min(1).default(2),
    // GPT-2's ratio.
    mlpRatio: z.number().int().min(1).default(4),
    // Tiny models trained for minutes do not overfit enough to need dropout; it also costs time.
    dropout: z.number().min(0).max(0.9).default(0),
    // GPT-2's learned table is the simplest; 'rope' generalises better to unseen lengths.
    positional: z.enum(['learned', 'rope']).default('learned'),
    // PyTorch's nn.LayerNorm default, so the golden parity fixtures match.
    layerNormEps: z.number().positive().default(1e-5),
    // GPT-2 ties them: saves V×D parameters, most of a tiny model.
    tieEmbeddings: z.boolean().default(true),
  })
  .strict();

export type GptConfigInput = z.input<typeof gptConfigSchema>;

/** Validates and completes a config. `path` prefixes the field in error messages (e.g. `model`). */
export function resolveGptConfig(input: unknown, path = ''): GptConfig {
  const config = resolveOptions(gptConfigSchema, input, path);
  if (config.dModel % config.nHeads !== 0) {
    throw new ConfigError(`dModel ${config.dModel} is not divisible by nHeads ${config.nHeads}`, {
      location: { field: path === '' ? 'nHeads' : `${path}.nHeads` },
      hint: 'choose nHeads that divides dModel (e.g. dModel 128 with 4 heads)',
    });
  }
  if (config.positional === 'rope' && (config.dModel / config.nHeads) % 2 !== 0) {
    throw new ConfigError(`rope needs an even head size, got ${config.dModel / config.nHeads}`, {
      location: { field: path === '' ? 'positional' : `${path}.positional` },
      hint: 'use an even dModel / nHeads, or positional "learned"',
    });
  }
  return config;
}

export type GptPresetName = 'nano' | 'micro' | 'mini' | 'small';

const presetShapes: Record<GptPresetName, GptConfigInput> = {
  // 370,432 params at vocab 4096: unit tests, smoke runs.
  nano: { dModel: 64, nLayers: 2, nHeads: 2, contextLength: 128 },
  // 1,334,016 params: the reference benchmark model (d 128, 4 layers, 4 heads).
  micro: { dModel: 128, nLayers: 4, nHeads: 4, contextLength: 128 },
  // 5,853,184 params.
  mini: { dModel: 256, nLayers: 6, nHeads: 8, contextLength: 256 },
  // 12,318,720 params.
  small: { dModel: 384, nLayers: 6, nHeads: 6, contextLength: 256 },
};

export const gptPresetNames: readonly GptPresetName[] = ['nano', 'micro', 'mini', 'small'];

/** A named size, optionally with fields overridden (e.g. `{ vocabSize: 512 }`). */
export function gptPreset(name: GptPresetName, overrides: GptConfigInput = {}): GptConfig {
  const shape = presetShapes[name];
  if (shape === undefined) {
    throw new ConfigError(`unknown model size "${String(name)}"`, {
      location: { field: 'size' },
      hint: `choose one of ${gptPresetNames.join(', ')}`,
    });
  }
  return resolveGptConfig({ ...shape, ...overrides });
}

/** Every parameter's name and shape, in a stable order. Linear weights are [in, out]. */
export function gptParameterShapes(config: GptConfig): Record<string, number[]> {
  const { vocabSize: V, contextLength: T, dModel: D, nLayers, mlpRatio } = config;
  const F = mlpRatio * D;
  const shapes: Record<string, number[]> = { wte: [V, D] };
  if (config.positional === 'learned') shapes.wpe = [T, D];
  for (let l = 0; l < nLayers; l++) {
    const p = `h.${l}`;
    shapes[`${p}.ln_1.g`] = [D];
    shapes[`${p}.ln_1.b`] = [D];
    for (const m of ['q', 'k', 'v', 'o']) {
      shapes[`${p}.attn.${m}.w`] = [D, D];
      shapes[`${p}.attn.${m}.b`] = [D];
    }
    shapes[`${p}.ln_2.g`] = [D];
    shapes[`${p}.ln_2.b`] = [D];
    shapes[`${p}.mlp.fc.w`] = [D, F];
    shapes[`${p}.mlp.fc.b`] = [F];
    shapes[`${p}.mlp.proj.w`] = [F, D];
    shapes[`${p}.mlp.proj.b`] = [D];
  }
  shapes['ln_f.g'] = [D];
  shapes['ln_f.b'] = [D];
  if (!config.tieEmbeddings) shapes['lm_head.w'] = [V, D];
  return shapes;
}

/** Number of scalar parameters (tied embeddings counted once). */
export function paramCount(config: GptConfig): number {
  let n = 0;
  for (const shape of Object.values(gptParameterShapes(config))) n += shape.reduce((a, b) => a * b, 1);
  return n;
}
