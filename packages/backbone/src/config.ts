/**
 * The transformer's config: one typed object, the reason beside each default, named size presets
 * and their parameter counts. `resolveGptConfig` validates user input (ConfigError naming the field).
 */
import { ConfigError, resolveOptions } from '@quorum/core';
import { z } from 'zod';

export type Positional = 'learned' | 'rope';
/** LayerNorm (mean and variance, gain and bias) or RMSNorm (root mean square, gain only). */
export type NormKind = 'layernorm' | 'rmsnorm';
/** `gelu`: proj(act(fc(x))). `swiglu`: proj(silu(gate(x)) · fc(x)) (Llama). */
export type MlpKind = 'gelu' | 'swiglu';
/** PyTorch's `nn.GELU(approximate=…)`: `tanh` is GPT-2's `gelu_new`, `none` the exact erf form (NeoX `gelu`). */
export type GeluApprox = 'tanh' | 'none';
/** Which attention projections have a bias: all four (GPT-2, NeoX), q/k/v only (Qwen2), none (Llama). */
export type AttnBias = 'all' | 'qkv' | 'none';

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

  // Model families (the defaults are the Quorum GPT: GPT-2's block with learned positions or RoPE).
  /** Normalisation of every block and the final norm; `layerNormEps` is its epsilon either way. */
  readonly norm: NormKind;
  readonly mlp: MlpKind;
  /** The GELU of the `gelu` MLP. */
  readonly geluApprox: GeluApprox;
  /** MLP hidden width F when given (Llama's `intermediate_size`, e.g. 172); else mlpRatio × dModel. */
  readonly mlpHidden?: number | undefined;
  /** Key/value heads (grouped-query attention); nHeads must be a multiple. Default nHeads. */
  readonly nKvHeads?: number | undefined;
  /** Size of one head Dh; default dModel / nHeads. Queries are nHeads·Dh wide. */
  readonly headDim?: number | undefined;
  /** RoPE base: angle of pair i at position p is p · ropeTheta^(−2i / rotaryDims). */
  readonly ropeTheta: number;
  /** Leading dims of each head that RoPE rotates (NeoX `rotary_pct` · Dh); default all of Dh. */
  readonly rotaryDims?: number | undefined;
  /** x + attn(ln_1(x)) + mlp(ln_2(x)) in one step (GPT-NeoX) instead of two residual steps. */
  readonly parallelResidual: boolean;
  readonly attnBias: AttnBias;
  /** Whether the MLP's linear layers have biases. */
  readonly mlpBias: boolean;
}

/** The sizes a config implies: heads H and Hkv, head size Dh, rotated dims R, MLP width F. */
export interface GptDims {
  readonly H: number;
  readonly Hkv: number;
  readonly Dh: number;
  readonly R: number;
  readonly F: number;
}

export function gptDims(config: GptConfig): GptDims {
  const Dh = config.headDim ?? config.dModel / config.nHeads;
  return {
    H: config.nHeads,
    Hkv: config.nKvHeads ?? config.nHeads,
    Dh,
    R: config.positional === 'rope' ? (config.rotaryDims ?? Dh) : 0,
    F: config.mlpHidden ?? config.mlpRatio * config.dModel,
  };
}

/**
 * Upper bounds of a config, checked before anything is allocated: a config read from a checkpoint is
 * untrusted, and `dModel` 16384 × 64 layers would ask for terabytes. Each bound is far above any model
 * TensorFlow.js can run here (vocabularies of real models stay under 300k ids, contexts under 1M).
 */
export const GPT_CONFIG_LIMITS = {
  vocabSize: 2 ** 20,
  contextLength: 2 ** 20,
  dModel: 65_536,
  nLayers: 1024,
  nHeads: 1024,
  mlpRatio: 64,
  mlpHidden: 2 ** 20,
  headDim: 4096,
  /** Parameters of one backbone (8 GiB as float32): more than one process here can hold. */
  parameters: 2 ** 31,
} as const;

export const gptConfigSchema = z
  .object({
    // The project's compacted GPT-2 vocabulary keeps the 4096 most frequent ids of the shipped data.
    vocabSize: z.number().int().min(2).max(GPT_CONFIG_LIMITS.vocabSize).default(4096),
    // 128 tokens hold an instruction plus a short answer; attention cost grows with its square.
    contextLength: z.number().int().min(1).max(GPT_CONFIG_LIMITS.contextLength).default(128),
    // The nano model: small enough for unit tests and a two-minute SFT run on 2 cores.
    dModel: z.number().int().min(1).max(GPT_CONFIG_LIMITS.dModel).default(64),
    nLayers: z.number().int().min(1).max(GPT_CONFIG_LIMITS.nLayers).default(2),
    nHeads: z.number().int().min(1).max(GPT_CONFIG_LIMITS.nHeads).default(2),
    // GPT-2's ratio.
    mlpRatio: z.number().int().min(1).max(GPT_CONFIG_LIMITS.mlpRatio).default(4),
    // Tiny models trained for minutes do not overfit enough to need dropout; it also costs time.
    dropout: z.number().min(0).max(0.9).default(0),
    // GPT-2's learned table is the simplest; 'rope' generalises better to unseen lengths.
    positional: z.enum(['learned', 'rope']).default('learned'),
    // PyTorch's nn.LayerNorm default, so the golden parity fixtures match.
    layerNormEps: z.number().positive().max(1).default(1e-5),
    // GPT-2 ties them: saves V×D parameters, most of a tiny model.
    tieEmbeddings: z.boolean().default(true),
    // The family fields default to the Quorum GPT, so configs written before they existed load unchanged.
    norm: z.enum(['layernorm', 'rmsnorm']).default('layernorm'),
    mlp: z.enum(['gelu', 'swiglu']).default('gelu'),
    // GPT-2's gelu_new, what Quorum always used.
    geluApprox: z.enum(['tanh', 'none']).default('tanh'),
    mlpHidden: z.number().int().min(1).max(GPT_CONFIG_LIMITS.mlpHidden).optional(),
    nKvHeads: z.number().int().min(1).max(GPT_CONFIG_LIMITS.nHeads).optional(),
    headDim: z.number().int().min(1).max(GPT_CONFIG_LIMITS.headDim).optional(),
    // The RoPE paper's and Llama's base.
    ropeTheta: z.number().positive().default(10000),
    rotaryDims: z.number().int().min(2).max(GPT_CONFIG_LIMITS.headDim).optional(),
    parallelResidual: z.boolean().default(false),
    attnBias: z.enum(['all', 'qkv', 'none']).default('all'),
    mlpBias: z.boolean().default(true),
  })
  .strict();

export type GptConfigInput = z.input<typeof gptConfigSchema>;

/** Validates and completes a config. `path` prefixes the field in error messages (e.g. `model`). */
export function resolveGptConfig(input: unknown, path = ''): GptConfig {
  const config = resolveOptions(gptConfigSchema, input, path);
  const field = (name: string): { field: string } => ({ field: path === '' ? name : `${path}.${name}` });
  const { Hkv, Dh, R } = gptDims(config);
  if (config.headDim === undefined && config.dModel % config.nHeads !== 0) {
    throw new ConfigError(`dModel ${config.dModel} is not divisible by nHeads ${config.nHeads}`, {
      location: field('nHeads'),
      hint: 'choose nHeads that divides dModel (e.g. dModel 128 with 4 heads)',
    });
  }
  if (config.nHeads % Hkv !== 0) {
    throw new ConfigError(`nHeads ${config.nHeads} is not a multiple of nKvHeads ${Hkv}`, {
      location: field('nKvHeads'),
      hint: 'each key/value head serves the same number of query heads (e.g. 8 heads, 4 kv heads)',
    });
  }
  if (config.positional === 'rope' && (R % 2 !== 0 || R > Dh)) {
    throw new ConfigError(`rope rotates ${R} of the ${Dh} dims of a head; it needs an even count ≤ ${Dh}`, {
      location: field(config.rotaryDims === undefined ? 'positional' : 'rotaryDims'),
      hint: 'use an even head size (dModel / nHeads or headDim) and rotaryDims, or positional "learned"',
    });
  }
  if (config.rotaryDims !== undefined && config.positional !== 'rope') {
    throw new ConfigError(`rotaryDims ${config.rotaryDims} is set but positional is "${config.positional}"`, {
      location: field('rotaryDims'),
      hint: 'set positional "rope", or drop rotaryDims',
    });
  }
  const parameters = paramCount(config);
  if (parameters > GPT_CONFIG_LIMITS.parameters) {
    throw new ConfigError(
      `the config has ${parameters.toExponential(3)} parameters, more than the ${GPT_CONFIG_LIMITS.parameters} a backbone may have`,
      {
        location: field('dModel'),
        hint: 'choose a smaller dModel, nLayers, vocabSize or MLP width (the preset "small" has 12.3M)',
      },
    );
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

/**
 * Every parameter's name and shape, in a stable order. Linear weights are [in, out]; a layer has a bias
 * `.b` only when the config gives it one, a norm a bias only for LayerNorm, `mlp.gate` only for SwiGLU.
 */
export function gptParameterShapes(config: GptConfig): Record<string, number[]> {
  const { vocabSize: V, contextLength: T, dModel: D, nLayers } = config;
  const { H, Hkv, Dh, F } = gptDims(config);
  const shapes: Record<string, number[]> = { wte: [V, D] };
  if (config.positional === 'learned') shapes.wpe = [T, D];
  const norm = (p: string): void => {
    shapes[`${p}.g`] = [D];
    if (config.norm === 'layernorm') shapes[`${p}.b`] = [D];
  };
  const linear = (p: string, inDim: number, outDim: number, bias: boolean): void => {
    shapes[`${p}.w`] = [inDim, outDim];
    if (bias) shapes[`${p}.b`] = [outDim];
  };
  const qkvBias = config.attnBias !== 'none';
  for (let l = 0; l < nLayers; l++) {
    const p = `h.${l}`;
    norm(`${p}.ln_1`);
    linear(`${p}.attn.q`, D, H * Dh, qkvBias);
    linear(`${p}.attn.k`, D, Hkv * Dh, qkvBias);
    linear(`${p}.attn.v`, D, Hkv * Dh, qkvBias);
    linear(`${p}.attn.o`, H * Dh, D, config.attnBias === 'all');
    norm(`${p}.ln_2`);
    if (config.mlp === 'swiglu') linear(`${p}.mlp.gate`, D, F, config.mlpBias);
    linear(`${p}.mlp.fc`, D, F, config.mlpBias);
    linear(`${p}.mlp.proj`, F, D, config.mlpBias);
  }
  norm('ln_f');
  if (!config.tieEmbeddings) shapes['lm_head.w'] = [V, D];
  return shapes;
}

/** Number of scalar parameters (tied embeddings counted once). */
export function paramCount(config: GptConfig): number {
  let n = 0;
  for (const shape of Object.values(gptParameterShapes(config))) n += shape.reduce((a, b) => a * b, 1);
  return n;
}
