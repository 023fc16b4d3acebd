#!/usr/bin/env python3
"""Golden logits for @quorum/hf: tiny random Hugging Face checkpoints and a plain-PyTorch reference forward.

For each case this writes packages/hf/fixtures/<case>/ with
  config.json                  the exact config keys of transformers' config class for the model_type
  model.safetensors            weights under the exact Hugging Face tensor names (or shards + index)
  golden.json                  token id rows and, per row, the logits [T, V] of every position

No `transformers` is needed: the forward passes below follow transformers' modeling code line for line
(GPT2LMHeadModel with Conv1D and fused c_attn; GPTNeoXForCausalLM with the per-head [H, 3, Dh] fused
query_key_value, partial rotary and the parallel residual; LlamaForCausalLM / Qwen2ForCausalLM with
rotate-half RoPE and repeat_kv), in float64 on the weights as stored (F16/BF16 rounded). Each row is run
alone and unpadded, with positions 0..T-1: what a model gives a left-padded batch whose positions come from
the attention mask.

    /usr/bin/python3 tools/parity/hf_golden.py
"""

import json
import math
import os
import struct

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
OUT = os.path.join(ROOT, 'packages', 'hf', 'fixtures')

DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}


# ------------------------------------------------------------------------------------------ safetensors


def tensor_bytes(t, dtype):
    t = t.to(DTYPES[dtype]).contiguous()
    if dtype == 'F32':
        return t.numpy().tobytes()
    return t.view(torch.int16).numpy().tobytes()  # raw 16-bit patterns, little-endian


def write_safetensors(path, tensors, dtype):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensor_bytes(tensors[name], dtype)
        header[name] = {'dtype': dtype, 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header['__metadata__'] = {'format': 'pt'}
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    return offset


def stored(t, dtype):
    """The value the loader reads back: rounded to the stored dtype, then float64."""
    return t.to(DTYPES[dtype]).to(torch.float64)


# ------------------------------------------------------------------------------------------ shared math


def layer_norm(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)


def rms_norm(x, w, eps):  # LlamaRMSNorm / Qwen2RMSNorm
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


def gelu_new(x):  # transformers.activations.NewGELUActivation
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(T, dim, base):
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float64) / dim))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()  # [T, dim]


def causal_attention(q, k, v):
    """q [H, T, Dh], k and v [H, T, Dh] → [T, H·Dh]."""
    H, T, Dh = q.shape
    scores = q @ k.transpose(-1, -2) / math.sqrt(Dh)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(mask, float('-inf'))
    out = torch.softmax(scores, dim=-1) @ v  # [H, T, Dh]
    return out.transpose(0, 1).reshape(T, H * Dh)


# ------------------------------------------------------------------------------------------ families


def gpt2_forward(cfg, w, ids):
    D, H = cfg['n_embd'], cfg['n_head']
    p = 'transformer.'
    T = len(ids)
    x = w[p + 'wte.weight'][ids] + w[p + 'wpe.weight'][torch.arange(T)]
    for l in range(cfg['n_layer']):
        h = f'{p}h.{l}.'
        a = layer_norm(x, w[h + 'ln_1.weight'], w[h + 'ln_1.bias'], cfg['layer_norm_epsilon'])
        qkv = a @ w[h + 'attn.c_attn.weight'] + w[h + 'attn.c_attn.bias']  # Conv1D: x·W + b, W [in, out]
        q, k, v = qkv.split(D, dim=-1)
        heads = lambda t: t.view(T, H, D // H).transpose(0, 1)  # noqa: E731
        a = causal_attention(heads(q), heads(k), heads(v))
        x = x + a @ w[h + 'attn.c_proj.weight'] + w[h + 'attn.c_proj.bias']
        m = layer_norm(x, w[h + 'ln_2.weight'], w[h + 'ln_2.bias'], cfg['layer_norm_epsilon'])
        m = gelu_new(m @ w[h + 'mlp.c_fc.weight'] + w[h + 'mlp.c_fc.bias'])
        x = x + m @ w[h + 'mlp.c_proj.weight'] + w[h + 'mlp.c_proj.bias']
    x = layer_norm(x, w[p + 'ln_f.weight'], w[p + 'ln_f.bias'], cfg['layer_norm_epsilon'])
    return x @ w[p + 'wte.weight'].T  # tied


def neox_forward(cfg, w, ids):
    D, H = cfg['hidden_size'], cfg['num_attention_heads']
    Dh = D // H
    R = int(Dh * cfg['rotary_pct'])
    eps = cfg['layer_norm_eps']
    T = len(ids)
    cos, sin = rope_cos_sin(T, R, cfg['rotary_emb_base'])
    x = w['gpt_neox.embed_in.weight'][ids]
    for l in range(cfg['num_hidden_layers']):
        h = f'gpt_neox.layers.{l}.'
        a = layer_norm(x, w[h + 'input_layernorm.weight'], w[h + 'input_layernorm.bias'], eps)
        qkv = a @ w[h + 'attention.query_key_value.weight'].T + w[h + 'attention.query_key_value.bias']
        qkv = qkv.view(T, H, 3 * Dh).transpose(0, 1)  # [H, T, 3·Dh]
        q, k, v = qkv.chunk(3, dim=-1)
        q = torch.cat((q[..., :R] * cos + rotate_half(q[..., :R]) * sin, q[..., R:]), dim=-1)
        k = torch.cat((k[..., :R] * cos + rotate_half(k[..., :R]) * sin, k[..., R:]), dim=-1)
        attn = causal_attention(q, k, v) @ w[h + 'attention.dense.weight'].T + w[h + 'attention.dense.bias']
        m_in = layer_norm(x, w[h + 'post_attention_layernorm.weight'], w[h + 'post_attention_layernorm.bias'], eps)
        m = torch.nn.functional.gelu(m_in @ w[h + 'mlp.dense_h_to_4h.weight'].T + w[h + 'mlp.dense_h_to_4h.bias'])
        m = m @ w[h + 'mlp.dense_4h_to_h.weight'].T + w[h + 'mlp.dense_4h_to_h.bias']
        assert cfg['use_parallel_residual']
        x = x + attn + m
    x = layer_norm(x, w['gpt_neox.final_layer_norm.weight'], w['gpt_neox.final_layer_norm.bias'], eps)
    return x @ w['embed_out.weight'].T


def llama_forward(cfg, w, ids):
    H, Hkv = cfg['num_attention_heads'], cfg['num_key_value_heads']
    Dh = cfg.get('head_dim') or cfg['hidden_size'] // H
    eps = cfg['rms_norm_eps']
    T = len(ids)
    cos, sin = rope_cos_sin(T, Dh, cfg['rope_theta'])
    bias = lambda name: w.get(name, 0.0)  # noqa: E731  (Qwen2: q/k/v biases only)
    x = w['model.embed_tokens.weight'][ids]
    for l in range(cfg['num_hidden_layers']):
        h = f'model.layers.{l}.'
        a = rms_norm(x, w[h + 'input_layernorm.weight'], eps)
        proj = lambda m: a @ w[f'{h}self_attn.{m}_proj.weight'].T + bias(f'{h}self_attn.{m}_proj.bias')  # noqa: E731
        q = proj('q').view(T, H, Dh).transpose(0, 1)
        k = proj('k').view(T, Hkv, Dh).transpose(0, 1)
        v = proj('v').view(T, Hkv, Dh).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = H // Hkv  # repeat_kv: kv head j serves query heads j·rep … j·rep + rep − 1
        k = k[:, None].expand(Hkv, rep, T, Dh).reshape(H, T, Dh)
        v = v[:, None].expand(Hkv, rep, T, Dh).reshape(H, T, Dh)
        x = x + causal_attention(q, k, v) @ w[h + 'self_attn.o_proj.weight'].T
        m = rms_norm(x, w[h + 'post_attention_layernorm.weight'], eps)
        gate = torch.nn.functional.silu(m @ w[h + 'mlp.gate_proj.weight'].T)
        x = x + (gate * (m @ w[h + 'mlp.up_proj.weight'].T)) @ w[h + 'mlp.down_proj.weight'].T
    x = rms_norm(x, w['model.norm.weight'], eps)
    head = w['model.embed_tokens.weight'] if cfg['tie_word_embeddings'] else w['lm_head.weight']
    return x @ head.T


# ------------------------------------------------------------------------------------------ checkpoints


def rand(g, *shape, std=0.3):
    return torch.randn(*shape, generator=g, dtype=torch.float64) * std


def gpt2_weights(cfg, g):
    V, T, D, F = cfg['vocab_size'], cfg['n_positions'], cfg['n_embd'], 4 * cfg['n_embd']
    p = 'transformer.'
    w = {p + 'wte.weight': rand(g, V, D), p + 'wpe.weight': rand(g, T, D, std=0.1)}
    for l in range(cfg['n_layer']):
        h = f'{p}h.{l}.'
        for n in ('ln_1', 'ln_2'):
            w[h + n + '.weight'] = 1 + rand(g, D, std=0.1)
            w[h + n + '.bias'] = rand(g, D, std=0.1)
        for n, (i, o) in {'attn.c_attn': (D, 3 * D), 'attn.c_proj': (D, D), 'mlp.c_fc': (D, F), 'mlp.c_proj': (F, D)}.items():
            w[h + n + '.weight'] = rand(g, i, o)  # Conv1D [in, out]
            w[h + n + '.bias'] = rand(g, o, std=0.1)
    w[p + 'ln_f.weight'] = 1 + rand(g, D, std=0.1)
    w[p + 'ln_f.bias'] = rand(g, D, std=0.1)
    return w


def neox_weights(cfg, g):
    V, D, F = cfg['vocab_size'], cfg['hidden_size'], cfg['intermediate_size']
    w = {'gpt_neox.embed_in.weight': rand(g, V, D), 'embed_out.weight': rand(g, V, D)}
    for l in range(cfg['num_hidden_layers']):
        h = f'gpt_neox.layers.{l}.'
        for n in ('input_layernorm', 'post_attention_layernorm'):
            w[h + n + '.weight'] = 1 + rand(g, D, std=0.1)
            w[h + n + '.bias'] = rand(g, D, std=0.1)
        shapes = {'attention.query_key_value': (3 * D, D), 'attention.dense': (D, D), 'mlp.dense_h_to_4h': (F, D), 'mlp.dense_4h_to_h': (D, F)}
        for n, (o, i) in shapes.items():
            w[h + n + '.weight'] = rand(g, o, i)  # nn.Linear [out, in]
            w[h + n + '.bias'] = rand(g, o, std=0.1)
    w['gpt_neox.final_layer_norm.weight'] = 1 + rand(g, D, std=0.1)
    w['gpt_neox.final_layer_norm.bias'] = rand(g, D, std=0.1)
    return w


def llama_weights(cfg, g, qkv_bias):
    V, D, F = cfg['vocab_size'], cfg['hidden_size'], cfg['intermediate_size']
    H, Hkv = cfg['num_attention_heads'], cfg['num_key_value_heads']
    Dh = cfg.get('head_dim') or D // H
    w = {'model.embed_tokens.weight': rand(g, V, D)}
    if not cfg['tie_word_embeddings']:
        w['lm_head.weight'] = rand(g, V, D)
    for l in range(cfg['num_hidden_layers']):
        h = f'model.layers.{l}.'
        w[h + 'input_layernorm.weight'] = 1 + rand(g, D, std=0.1)
        w[h + 'post_attention_layernorm.weight'] = 1 + rand(g, D, std=0.1)
        for m, o in (('q', H * Dh), ('k', Hkv * Dh), ('v', Hkv * Dh)):
            w[f'{h}self_attn.{m}_proj.weight'] = rand(g, o, D)
            if qkv_bias:
                w[f'{h}self_attn.{m}_proj.bias'] = rand(g, o, std=0.1)
        w[h + 'self_attn.o_proj.weight'] = rand(g, D, H * Dh)
        w[h + 'mlp.gate_proj.weight'] = rand(g, F, D)
        w[h + 'mlp.up_proj.weight'] = rand(g, F, D)
        w[h + 'mlp.down_proj.weight'] = rand(g, D, F)
    w['model.norm.weight'] = 1 + rand(g, D, std=0.1)
    return w


CASES = {
    # GPT2LMHeadModel, F32, tied, with the attn.bias causal-mask buffers older transformers saved.
    'gpt2': {
        'config': {
            'architectures': ['GPT2LMHeadModel'], 'model_type': 'gpt2', 'vocab_size': 53, 'n_positions': 16,
            'n_embd': 16, 'n_layer': 2, 'n_head': 4, 'n_inner': None, 'activation_function': 'gelu_new',
            'resid_pdrop': 0.1, 'embd_pdrop': 0.1, 'attn_pdrop': 0.1, 'layer_norm_epsilon': 1e-5,
            'initializer_range': 0.02, 'scale_attn_weights': True, 'scale_attn_by_inverse_layer_idx': False,
            'reorder_and_upcast_attn': False, 'tie_word_embeddings': True, 'bos_token_id': 50, 'eos_token_id': 50,
            'torch_dtype': 'float32',
        },
        'dtype': 'F32', 'forward': gpt2_forward, 'weights': gpt2_weights, 'buffers': True,
    },
    # GPTNeoXForCausalLM (Pythia layout), F16, untied, half of each head rotated (rotary_pct 0.5).
    'gpt-neox': {
        'config': {
            'architectures': ['GPTNeoXForCausalLM'], 'model_type': 'gpt_neox', 'vocab_size': 53,
            'hidden_size': 16, 'num_hidden_layers': 2, 'num_attention_heads': 2, 'intermediate_size': 40,
            'hidden_act': 'gelu', 'rotary_pct': 0.5, 'rotary_emb_base': 10000, 'attention_dropout': 0.0,
            'hidden_dropout': 0.0, 'max_position_embeddings': 32, 'initializer_range': 0.02,
            'layer_norm_eps': 1e-5, 'use_cache': True, 'bos_token_id': 0, 'eos_token_id': 0,
            'tie_word_embeddings': False, 'use_parallel_residual': True, 'rope_scaling': None,
            'attention_bias': True, 'torch_dtype': 'float16',
        },
        'dtype': 'F16', 'forward': neox_forward, 'weights': neox_weights,
    },
    # LlamaForCausalLM, BF16, sharded in two files, grouped-query attention (4 heads, 2 kv heads), untied.
    'llama': {
        'config': {
            'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'vocab_size': 53, 'hidden_size': 16,
            'intermediate_size': 24, 'num_hidden_layers': 2, 'num_attention_heads': 4, 'num_key_value_heads': 2,
            'hidden_act': 'silu', 'max_position_embeddings': 32, 'initializer_range': 0.02,
            'rms_norm_eps': 1e-6, 'use_cache': True, 'pad_token_id': None, 'bos_token_id': 1, 'eos_token_id': 2,
            'pretraining_tp': 1, 'tie_word_embeddings': False, 'rope_theta': 500000.0, 'rope_scaling': None,
            'attention_bias': False, 'attention_dropout': 0.0, 'mlp_bias': False, 'torch_dtype': 'bfloat16',
        },
        'dtype': 'BF16', 'forward': llama_forward, 'weights': lambda c, g: llama_weights(c, g, False), 'shards': 2,
    },
    # Qwen2ForCausalLM, F32, tied, q/k/v biases, one kv head for four query heads.
    'qwen2': {
        'config': {
            'architectures': ['Qwen2ForCausalLM'], 'model_type': 'qwen2', 'vocab_size': 53, 'hidden_size': 16,
            'intermediate_size': 20, 'num_hidden_layers': 2, 'num_attention_heads': 4, 'num_key_value_heads': 1,
            'hidden_act': 'silu', 'max_position_embeddings': 32, 'initializer_range': 0.02, 'rms_norm_eps': 1e-6,
            'use_cache': True, 'tie_word_embeddings': True, 'rope_theta': 1000000.0, 'rope_scaling': None,
            'use_sliding_window': False, 'sliding_window': 4096, 'max_window_layers': 28,
            'attention_dropout': 0.0, 'bos_token_id': 51, 'eos_token_id': 52, 'torch_dtype': 'float32',
        },
        'dtype': 'F32', 'forward': llama_forward, 'weights': lambda c, g: llama_weights(c, g, True),
    },
}

ROWS = [[3, 17, 8, 41, 22, 5, 30], [9, 2, 44], [12, 7, 33, 1, 50]]


def main():
    for i, (name, case) in enumerate(CASES.items()):
        g = torch.Generator().manual_seed(1234 + i)
        cfg, dtype = case['config'], case['dtype']
        w = case['weights'](cfg, g)
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        with open(os.path.join(folder, 'config.json'), 'w') as f:
            json.dump(cfg, f, indent=2)
            f.write('\n')
        files = dict(w)
        if case.get('buffers'):
            T = cfg['n_positions']
            for l in range(cfg['n_layer']):
                files[f'transformer.h.{l}.attn.bias'] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
        shards = case.get('shards', 1)
        if shards == 1:
            write_safetensors(os.path.join(folder, 'model.safetensors'), files, dtype)
        else:
            names = sorted(files)
            first = [n for n in names if n.startswith('model.embed_tokens') or n.startswith('model.layers.0.')]
            parts = [first, [n for n in names if n not in first]]
            weight_map, total = {}, 0
            for s, part in enumerate(parts):
                shard = f'model-{s + 1:05d}-of-{shards:05d}.safetensors'
                total += write_safetensors(os.path.join(folder, shard), {n: files[n] for n in part}, dtype)
                weight_map.update({n: shard for n in part})
            with open(os.path.join(folder, 'model.safetensors.index.json'), 'w') as f:
                json.dump({'metadata': {'total_size': total}, 'weight_map': dict(sorted(weight_map.items()))}, f, indent=2)
                f.write('\n')
        ws = {n: stored(t, dtype) for n, t in w.items()}
        with torch.no_grad():
            logits = [case['forward'](cfg, ws, torch.tensor(r)).tolist() for r in ROWS]
        golden = {
            'note': 'written by tools/parity/hf_golden.py; logits[r][t][v] of row r run alone (positions 0..T-1)',
            'dtype': dtype,
            'ids': ROWS,
            'logits': [[[float(f'{v:.7g}') for v in pos] for pos in row] for row in logits],
        }
        with open(os.path.join(folder, 'golden.json'), 'w') as f:
            json.dump(golden, f, separators=(',', ':'))
            f.write('\n')
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(f'{name}: {dtype}, {len(w)} tensors, {size} bytes in {folder}')


if __name__ == '__main__':
    main()
