import { describe, expect, it } from 'vitest';
import { hfModelConfig } from './config.js';

const gpt2 = { model_type: 'gpt2', vocab_size: 50, n_positions: 32, n_embd: 16, n_layer: 2, n_head: 4 };
const neox = {
  model_type: 'gpt_neox',
  vocab_size: 50,
  max_position_embeddings: 64,
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 128,
};

describe('hfModelConfig', () => {
  it("uses transformers' defaults: GPT-2 tied with gelu_new, NeoX untied, parallel, a quarter rotated", () => {
    expect(hfModelConfig(gpt2, 'config.json').config).toMatchObject({
      positional: 'learned',
      geluApprox: 'tanh',
      mlpRatio: 4,
      tieEmbeddings: true,
      norm: 'layernorm',
    });
    expect(hfModelConfig({ ...gpt2, activation_function: 'gelu', n_inner: 40 }, 'c').config).toMatchObject({
      geluApprox: 'none',
      mlpHidden: 40,
    });
    expect(hfModelConfig(neox, 'c').config).toMatchObject({
      rotaryDims: 2,
      parallelResidual: true,
      geluApprox: 'none',
      tieEmbeddings: false,
      attnBias: 'all',
    });
    const full = hfModelConfig({ ...neox, rotary_pct: 1, rope_theta: 500 }, 'c').config;
    expect(full.rotaryDims).toBeUndefined();
    expect(full.ropeTheta).toBe(500);
  });

  it('rejects what the backbone cannot run, naming the key', () => {
    expect(() => hfModelConfig({ ...neox, rotary_pct: 0.4 }, 'm/config.json')).toThrow(
      /m\/config.json field "rotary_pct": "rotary_pct" 0.4 of head size 8 rotates 3 dims/,
    );
    expect(() => hfModelConfig({ ...gpt2, activation_function: 'relu' }, 'c')).toThrow(
      /"activation_function" "relu" is not supported\n {2}hint: Quorum supports "gelu_new", "gelu_pytorch_tanh", "gelu"/,
    );
    expect(() => hfModelConfig({ ...gpt2, scale_attn_by_inverse_layer_idx: true }, 'c')).toThrow(
      /field "scale_attn_by_inverse_layer_idx"/,
    );
    expect(() => hfModelConfig({ ...gpt2, n_head: 3 }, 'c')).toThrow(
      /hidden size 16 is not divisible by 3 heads/,
    );
    expect(() => hfModelConfig([], 'c')).toThrow(/not a JSON object/);
    expect(() => hfModelConfig({ ...gpt2, model_type: undefined }, 'c')).toThrow(/"model_type" is missing/);
  });
});
