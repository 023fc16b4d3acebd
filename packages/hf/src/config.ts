/**
 * A Hugging Face `config.json` → Quorum's GptConfig, for the model types Quorum runs:
 *
 *   llama     Llama, SmolLM, TinyLlama: RMSNorm, SwiGLU, RoPE (rope_theta), grouped-query attention
 *   qwen2     as llama, with q/k/v biases
 *   gpt2      gpt2, distilgpt2: learned positions, LayerNorm, GELU (tanh), fused c_attn, Conv1D weights
 *   gpt_neox  GPT-NeoX, Pythia: partial rotary (rotary_pct), parallel residual, fused query_key_value
 *
 * Every key is checked; an unknown model_type, rope scaling, a sliding window or an activation the
 * backbone does not have is a ConfigError naming the file, the key and what is supported. Defaults are
 * those of the transformers config classes.
 */
import { type GptConfig, type GptConfigInput, gptDims, resolveGptConfig } from '@quorum/backbone';
import { ConfigError, describeValue } from '@quorum/core';

export type HfFamily = 'llama' | 'gpt2' | 'gpt_neox';

/** model_type values and the family (tensor layout) each one has. */
export const HF_MODEL_TYPES: Readonly<Record<string, HfFamily>> = {
  llama: 'llama',
  qwen2: 'llama',
  gpt2: 'gpt2',
  gpt_neox: 'gpt_neox',
};

export interface HfModelConfig {
  /** config.json's model_type. */
  readonly modelType: string;
  /** The tensor layout (Qwen2 shares Llama's names). */
  readonly family: HfFamily;
  readonly config: GptConfig;
  /** config.json's token ids, when it has them. */
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | readonly number[] | undefined;
  readonly padTokenId: number | undefined;
}

type Json = Record<string, unknown>;

/** Typed reads of config.json keys, each error naming the file and the key. */
class Keys {
  constructor(
    private readonly json: Json,
    private readonly file: string,
  ) {}

  fail(key: string, message: string, hint: string): never {
    throw new ConfigError(message, { location: { file: this.file, field: key }, hint });
  }

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  int(key: string, fallback?: number): number {
    const v = this.has(key) ? this.json[key] : fallback;
    if (v === undefined) this.fail(key, `"${key}" is missing`, 'copy config.json from the model again');
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      this.fail(key, `"${key}" must be a positive integer, got ${describeValue(v)}`, 'fix the value');
    }
    return v;
  }

  num(key: string, fallback: number): number {
    const v = this.has(key) ? this.json[key] : fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      this.fail(key, `"${key}" must be a positive number, got ${describeValue(v)}`, 'fix the value');
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.has(key) ? this.json[key] : fallback;
    if (typeof v !== 'boolean')
      this.fail(key, `"${key}" must be true or false, got ${describeValue(v)}`, 'fix the value');
    return v;
  }

  /** A string key that must be one of `allowed` (mapped to its value). */
  choice<T>(key: string, fallback: string, allowed: Readonly<Record<string, T>>): T {
    const v = this.has(key) ? this.json[key] : fallback;
    if (typeof v !== 'string' || !Object.hasOwn(allowed, v)) {
      this.fail(
        key,
        `"${key}" ${describeValue(v)} is not supported`,
        `Quorum supports ${Object.keys(allowed)
          .map((a) => `"${a}"`)
          .join(', ')}`,
      );
    }
    return allowed[v] as T;
  }

  /** A key that must be absent, null or `ok` (a feature the backbone does not have). */
  absent(key: string, what: string, ok?: unknown): void {
    if (this.has(key) && this.json[key] !== ok) {
      this.fail(
        key,
        `"${key}" is ${describeValue(this.json[key])}: ${what} is not supported`,
        `Quorum runs ${what === 'rope scaling' ? 'plain RoPE' : 'the model without it'}; use a model whose config.json has no ${key}`,
      );
    }
  }

  tokenId(key: string): number | undefined {
    if (!this.has(key)) return undefined;
    const v = this.json[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      this.fail(key, `"${key}" must be a token id, got ${describeValue(v)}`, 'fix the value');
    }
    return v;
  }
}

const GELU_APPROX = { gelu_new: 'tanh', gelu_pytorch_tanh: 'tanh', gelu: 'none' } as const;

function llama(k: Keys, modelType: string): GptConfigInput {
  const D = k.int('hidden_size');
  const H = k.int('num_attention_heads');
  const qwen = modelType === 'qwen2';
  k.choice('hidden_act', 'silu', { silu: true });
  k.absent('rope_scaling', 'rope scaling');
  if (qwen) k.absent('use_sliding_window', 'sliding-window attention', false);
  const attentionBias = qwen ? false : k.bool('attention_bias', false);
  return {
    vocabSize: k.int('vocab_size'),
    contextLength: k.int('max_position_embeddings'),
    dModel: D,
    nLayers: k.int('num_hidden_layers'),
    nHeads: H,
    nKvHeads: k.int('num_key_value_heads', H),
    ...(k.has('head_dim') ? { headDim: k.int('head_dim') } : {}),
    mlp: 'swiglu',
    mlpHidden: k.int('intermediate_size'),
    norm: 'rmsnorm',
    layerNormEps: k.num('rms_norm_eps', 1e-6),
    positional: 'rope',
    ropeTheta: k.num('rope_theta', 10000),
    attnBias: qwen ? 'qkv' : attentionBias ? 'all' : 'none',
    mlpBias: qwen ? false : k.bool('mlp_bias', false),
    tieEmbeddings: k.bool('tie_word_embeddings', false),
  };
}

function gpt2(k: Keys): GptConfigInput {
  const D = k.int('n_embd');
  k.absent('scale_attn_by_inverse_layer_idx', 'scaling attention by the inverse layer index', false);
  if (!k.bool('scale_attn_weights', true)) {
    k.fail(
      'scale_attn_weights',
      '"scale_attn_weights" false is not supported',
      'Quorum scales attention by 1/√Dh',
    );
  }
  return {
    vocabSize: k.int('vocab_size'),
    contextLength: k.int('n_positions'),
    dModel: D,
    nLayers: k.int('n_layer'),
    nHeads: k.int('n_head'),
    ...(k.has('n_inner') ? { mlpHidden: k.int('n_inner') } : {}),
    geluApprox: k.choice('activation_function', 'gelu_new', GELU_APPROX),
    layerNormEps: k.num('layer_norm_epsilon', 1e-5),
    positional: 'learned',
    tieEmbeddings: k.bool('tie_word_embeddings', true),
  };
}

function neox(k: Keys): GptConfigInput {
  const D = k.int('hidden_size');
  const H = k.int('num_attention_heads');
  k.absent('rope_scaling', 'rope scaling');
  const pct = k.num('rotary_pct', 0.25);
  if (pct > 1) k.fail('rotary_pct', `"rotary_pct" must be at most 1, got ${pct}`, 'fix the value');
  const Dh = D / H;
  const R = Math.floor(Dh * pct);
  if (R < 2 || R % 2 !== 0) {
    k.fail(
      'rotary_pct',
      `"rotary_pct" ${pct} of head size ${Dh} rotates ${R} dims, not an even count ≥ 2`,
      'Quorum rotates pairs of dims',
    );
  }
  const biased = k.bool('attention_bias', true);
  return {
    vocabSize: k.int('vocab_size'),
    contextLength: k.int('max_position_embeddings'),
    dModel: D,
    nLayers: k.int('num_hidden_layers'),
    nHeads: H,
    mlpHidden: k.int('intermediate_size'),
    geluApprox: k.choice('hidden_act', 'gelu', GELU_APPROX),
    layerNormEps: k.num('layer_norm_eps', 1e-5),
    positional: 'rope',
    ...(R === Dh ? {} : { rotaryDims: R }),
    ropeTheta: k.num(k.has('rope_theta') ? 'rope_theta' : 'rotary_emb_base', 10000),
    parallelResidual: k.bool('use_parallel_residual', true),
    attnBias: biased ? 'all' : 'none',
    tieEmbeddings: k.bool('tie_word_embeddings', false),
  };
}

/** config.json's value → the GptConfig and family; `file` names config.json in errors. */
export function hfModelConfig(json: unknown, file: string): HfModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`is ${describeValue(json)}, not a JSON object`, {
      location: { file },
      hint: 'pass the config.json of a Hugging Face model',
    });
  }
  const k = new Keys(json as Json, file);
  const supported = Object.keys(HF_MODEL_TYPES)
    .map((t) => `"${t}"`)
    .join(', ');
  const modelType = (json as Json).model_type;
  if (typeof modelType !== 'string' || !Object.hasOwn(HF_MODEL_TYPES, modelType)) {
    return k.fail(
      'model_type',
      modelType === undefined
        ? '"model_type" is missing'
        : `model_type ${describeValue(modelType)} is not supported`,
      `Quorum loads model_type ${supported}`,
    );
  }
  const family = HF_MODEL_TYPES[modelType] as HfFamily;
  const input = family === 'llama' ? llama(k, modelType) : family === 'gpt2' ? gpt2(k) : neox(k);
  if (input.headDim === undefined && (input.dModel as number) % (input.nHeads as number) !== 0) {
    k.fail(
      family === 'gpt2' ? 'n_head' : 'num_attention_heads',
      `hidden size ${input.dModel} is not divisible by ${input.nHeads} heads`,
      'fix the value, or give head_dim',
    );
  }
  let config: GptConfig;
  try {
    config = resolveGptConfig({ ...input, dropout: 0 });
  } catch (cause) {
    throw new ConfigError(
      `describes a model Quorum cannot build: ${(cause as Error).message.split('\n')[0]}`,
      {
        location: { file },
        hint: 'check the head counts and sizes in config.json',
        cause,
      },
    );
  }
  const eos = (json as Json).eos_token_id;
  return {
    modelType,
    family,
    config,
    bosTokenId: k.tokenId('bos_token_id'),
    eosTokenId: Array.isArray(eos) ? (eos as number[]) : k.tokenId('eos_token_id'),
    padTokenId: k.tokenId('pad_token_id'),
  };
}

// ---------------------------------------------------------------- GptConfig → config.json

/** The config.json a GptConfig exports as: its model_type, the tensor layout, and the JSON object. */
export interface HfConfigJson {
  readonly modelType: 'llama' | 'qwen2' | 'gpt2' | 'gpt_neox';
  readonly family: HfFamily;
  /** config.json's keys for the model (no `architectures`, token ids or labels: the exporter adds those). */
  readonly json: Record<string, unknown>;
}

/** A requirement of a family that the config does not meet: the GptConfig field, its value and the need. */
interface Misfit {
  readonly field: keyof GptConfig;
  readonly message: string;
}

const GELU_ACT: Readonly<Record<GptConfig['geluApprox'], string>> = { tanh: 'gelu_new', none: 'gelu' };

function misfits(config: GptConfig, family: HfFamily): Misfit[] {
  const { H, Hkv, Dh } = gptDims(config);
  const out: Misfit[] = [];
  const need = (ok: boolean, field: keyof GptConfig, message: string): void => {
    if (!ok) out.push({ field, message });
  };
  const value = (field: keyof GptConfig): string => JSON.stringify(config[field]);
  if (family === 'llama') {
    need(config.norm === 'rmsnorm', 'norm', `norm ${value('norm')}: the llama family has "rmsnorm"`);
    need(config.mlp === 'swiglu', 'mlp', `mlp ${value('mlp')}: the llama family has "swiglu"`);
    need(config.positional === 'rope', 'positional', `positional ${value('positional')}: llama has "rope"`);
    need(
      !config.parallelResidual,
      'parallelResidual',
      'parallelResidual true: llama has sequential residuals',
    );
    need(
      config.rotaryDims === undefined || config.rotaryDims === Dh,
      'rotaryDims',
      `rotaryDims ${config.rotaryDims} of ${Dh}: llama rotates every dim of a head`,
    );
    need(
      config.attnBias !== 'qkv' || !config.mlpBias,
      'mlpBias',
      'mlpBias true with attnBias "qkv": qwen2 has no MLP biases',
    );
  } else {
    need(config.norm === 'layernorm', 'norm', `norm ${value('norm')}: ${family} has "layernorm"`);
    need(config.mlp === 'gelu', 'mlp', `mlp ${value('mlp')}: ${family} has the "gelu" MLP`);
    need(Hkv === H, 'nKvHeads', `nKvHeads ${Hkv} of ${H} heads: ${family} has no grouped-query attention`);
    need(
      Dh * H === config.dModel,
      'headDim',
      `headDim ${Dh} × ${H} heads ≠ dModel ${config.dModel}: ${family} has no head_dim`,
    );
    need(config.mlpBias, 'mlpBias', `mlpBias false: ${family}'s MLP has biases`);
    if (family === 'gpt2') {
      need(config.positional === 'learned', 'positional', 'positional "rope": gpt2 has learned positions');
      need(
        !config.parallelResidual,
        'parallelResidual',
        'parallelResidual true: gpt2 has sequential residuals',
      );
      need(
        config.attnBias === 'all',
        'attnBias',
        `attnBias ${value('attnBias')}: gpt2's attention has biases`,
      );
    } else {
      need(config.positional === 'rope', 'positional', 'positional "learned": gpt_neox has rotary positions');
      need(
        config.attnBias !== 'qkv',
        'attnBias',
        'attnBias "qkv": gpt_neox biases all four attention projections or none',
      );
    }
  }
  return out;
}

function llamaJson(config: GptConfig): Record<string, unknown> {
  const { H, Hkv, F } = gptDims(config);
  const qwen = config.attnBias === 'qkv';
  return {
    model_type: qwen ? 'qwen2' : 'llama',
    vocab_size: config.vocabSize,
    max_position_embeddings: config.contextLength,
    hidden_size: config.dModel,
    intermediate_size: F,
    num_hidden_layers: config.nLayers,
    num_attention_heads: H,
    num_key_value_heads: Hkv,
    ...(config.headDim === undefined ? {} : { head_dim: config.headDim }),
    hidden_act: 'silu',
    rms_norm_eps: config.layerNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    ...(qwen
      ? { use_sliding_window: false, sliding_window: null, max_window_layers: config.nLayers }
      : { attention_bias: config.attnBias === 'all', mlp_bias: config.mlpBias, pretraining_tp: 1 }),
    attention_dropout: 0,
    initializer_range: 0.02,
    tie_word_embeddings: config.tieEmbeddings,
    use_cache: true,
    torch_dtype: 'float32',
  };
}

function gpt2Json(config: GptConfig): Record<string, unknown> {
  const { H, F } = gptDims(config);
  return {
    model_type: 'gpt2',
    vocab_size: config.vocabSize,
    n_positions: config.contextLength,
    n_ctx: config.contextLength,
    n_embd: config.dModel,
    n_layer: config.nLayers,
    n_head: H,
    n_inner: F === 4 * config.dModel && config.mlpHidden === undefined ? null : F,
    activation_function: GELU_ACT[config.geluApprox],
    layer_norm_epsilon: config.layerNormEps,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    initializer_range: 0.02,
    tie_word_embeddings: config.tieEmbeddings,
    use_cache: true,
    torch_dtype: 'float32',
  };
}

function neoxJson(config: GptConfig): Record<string, unknown> {
  const { H, Dh, R, F } = gptDims(config);
  return {
    model_type: 'gpt_neox',
    vocab_size: config.vocabSize,
    max_position_embeddings: config.contextLength,
    hidden_size: config.dModel,
    intermediate_size: F,
    num_hidden_layers: config.nLayers,
    num_attention_heads: H,
    // transformers' GPTNeoX reads the MLP activation through ACT2FN, which has "gelu_new" (tanh) and "gelu".
    hidden_act: GELU_ACT[config.geluApprox],
    rotary_pct: R / Dh,
    // Newer transformers read rope_theta, older ones rotary_emb_base: both are written.
    rope_theta: config.ropeTheta,
    rotary_emb_base: config.ropeTheta,
    rope_scaling: null,
    use_parallel_residual: config.parallelResidual,
    attention_bias: config.attnBias === 'all',
    layer_norm_eps: config.layerNormEps,
    attention_dropout: 0,
    hidden_dropout: 0,
    classifier_dropout: 0.1,
    initializer_range: 0.02,
    tie_word_embeddings: config.tieEmbeddings,
    use_cache: true,
    torch_dtype: 'float32',
  };
}

/**
 * GptConfig → the Hugging Face config.json of the family that computes the same function:
 *
 *   rmsnorm + swiglu + rope            → llama (qwen2 when attnBias is "qkv")
 *   layernorm + gelu + learned         → gpt2 (the Quorum GPT with learned positions is GPT-2's layout)
 *   layernorm + gelu + rope            → gpt_neox (the Quorum GPT with RoPE: use_parallel_residual false,
 *                                        rotary_pct 1, hidden_act "gelu_new")
 *
 * A config no family expresses is a ConfigError naming the GptConfig field that rules the nearest family
 * out. `hfModelConfig` of the result gives back a config that computes the same function (optional fields
 * such as `mlpHidden` may come back filled in).
 */
export function hfConfigFor(config: GptConfig, path = 'gptConfig'): HfConfigJson {
  const family: HfFamily =
    config.norm === 'rmsnorm' || config.mlp === 'swiglu'
      ? 'llama'
      : config.positional === 'learned'
        ? 'gpt2'
        : 'gpt_neox';
  const wrong = misfits(config, family);
  if (wrong.length > 0) {
    const first = wrong[0] as Misfit;
    throw new ConfigError(
      `no Hugging Face model type expresses this model: ${wrong.map((w) => w.message).join('; ')}`,
      {
        location: { field: `${path}.${first.field}` },
        hint: 'Hugging Face export supports llama/qwen2 (rmsnorm, swiglu, rope), gpt2 (layernorm, gelu, learned positions) and gpt_neox (layernorm, gelu, rope); train with a config of one of them',
      },
    );
  }
  const json =
    family === 'llama' ? llamaJson(config) : family === 'gpt2' ? gpt2Json(config) : neoxJson(config);
  if (family === 'gpt_neox') {
    // The loader rotates floor(Dh · rotary_pct) dims; a pct that does not give back R exactly is refused.
    const { Dh, R } = gptDims(config);
    if (Math.floor(Dh * (json.rotary_pct as number)) !== R) {
      throw new ConfigError(`rotaryDims ${R} of head size ${Dh} is not expressible as a rotary_pct`, {
        location: { field: `${path}.rotaryDims` },
        hint: 'use a rotaryDims that is a simple fraction of the head size (e.g. a quarter or half)',
      });
    }
  }
  return { modelType: json.model_type as HfConfigJson['modelType'], family, json };
}
