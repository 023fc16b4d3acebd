#!/usr/bin/env python3
"""Scores rows with a Hugging Face folder written by @quorum/hf's exportRewardModel, in plain PyTorch.

No `transformers`, `peft` or `safetensors` package is needed: the forward passes follow transformers'
GPT2ForSequenceClassification, GPTNeoXForSequenceClassification and LlamaForSequenceClassification /
Qwen2ForSequenceClassification (float64), including how they pick the token to score: the last token that
is not `pad_token_id` (transformers >= 4.48), and, for older versions, the token before the first pad. A
`lora` export (base/ + member-*/ PEFT adapters) is merged the way PEFT merges LoRA: W += (lora_alpha / r) ·
lora_B @ lora_A (transposed for fan_in_fan_out Conv1D weights), with rank_pattern / alpha_pattern, and the
member's head taken from `score.modules_to_save.weight`.

    /usr/bin/python3 tools/parity/hf_export_check.py EXPORT_DIR [--rows ROWS.json]

ROWS.json holds {"ids": [[...], ...], "scores": [[member 0's rewards], ...]} (the ids as Quorum encodes the
rows, and Quorum's rewards); packages/hf/src/export.test.ts writes one beside each export it keeps when
QUORUM_HF_EXPORT_KEEP=DIR is set. The script prints each member's rewards and the largest difference from
Quorum's. Not run in CI.
"""

import argparse
import json
import math
import os
import re
import struct
import sys

import torch

DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}


def read_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop('__metadata__', None)
    assert meta is not None and meta.get('format') == 'pt', f'{path}: transformers needs metadata format "pt"'
    out = {}
    for name, e in header.items():
        start, end = e['data_offsets']
        raw = bytearray(data[8 + n + start : 8 + n + end])
        t = torch.frombuffer(raw, dtype=DTYPES[e['dtype']]) if raw else torch.zeros(0, dtype=DTYPES[e['dtype']])
        out[name] = t.reshape(e['shape']).to(torch.float64)
    return out


def read_json(path):
    with open(path) as f:
        return json.load(f)


# ------------------------------------------------------------------------------------------ math


def layer_norm(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def act(name):
    if name == 'gelu_new':
        return lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))
    if name == 'gelu':
        return torch.nn.functional.gelu
    if name == 'silu':
        return torch.nn.functional.silu
    raise SystemExit(f'activation {name} not handled here')


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope(T, dim, base):
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float64) / dim))
    f = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    e = torch.cat((f, f), dim=-1)
    return e.cos(), e.sin()


def attention(q, k, v):
    """q [H, T, Dh], k/v [Hkv, T, Dh] → [T, H·Dh], causal (right padding needs no other mask)."""
    H, T, Dh = q.shape
    rep = H // k.shape[0]
    k = k.repeat_interleave(rep, dim=0)
    v = v.repeat_interleave(rep, dim=0)
    s = q @ k.transpose(-1, -2) / math.sqrt(Dh)
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float('-inf'))
    return (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(T, -1)


def lin(w, name, x):
    """nn.Linear: x Wᵀ (+ b when the checkpoint has one)."""
    y = x @ w[name + '.weight'].T
    return y + w[name + '.bias'] if name + '.bias' in w else y


# ------------------------------------------------------------------------------------------ families


def gpt2_hidden(c, w, ids):
    T, D, H = len(ids), c['n_embd'], c['n_head']
    eps, f = c['layer_norm_epsilon'], act(c.get('activation_function', 'gelu_new'))
    x = w['transformer.wte.weight'][ids] + w['transformer.wpe.weight'][torch.arange(T)]
    heads = lambda t: t.view(T, H, D // H).transpose(0, 1)  # noqa: E731
    for l in range(c['n_layer']):
        p = f'transformer.h.{l}.'
        a = layer_norm(x, w[p + 'ln_1.weight'], w[p + 'ln_1.bias'], eps)
        q, k, v = (a @ w[p + 'attn.c_attn.weight'] + w[p + 'attn.c_attn.bias']).split(D, -1)  # Conv1D [in, out]
        x = x + attention(heads(q), heads(k), heads(v)) @ w[p + 'attn.c_proj.weight'] + w[p + 'attn.c_proj.bias']
        m = layer_norm(x, w[p + 'ln_2.weight'], w[p + 'ln_2.bias'], eps)
        x = x + f(m @ w[p + 'mlp.c_fc.weight'] + w[p + 'mlp.c_fc.bias']) @ w[p + 'mlp.c_proj.weight'] + w[p + 'mlp.c_proj.bias']
    return layer_norm(x, w['transformer.ln_f.weight'], w['transformer.ln_f.bias'], eps)


def neox_hidden(c, w, ids):
    T, D, H = len(ids), c['hidden_size'], c['num_attention_heads']
    Dh = D // H
    R = int(Dh * c['rotary_pct'])
    eps, f = c['layer_norm_eps'], act(c['hidden_act'])
    cos, sin = rope(T, R, c.get('rope_theta', c.get('rotary_emb_base', 10000)))
    rot = lambda t: torch.cat((t[..., :R] * cos + rotate_half(t[..., :R]) * sin, t[..., R:]), -1)  # noqa: E731
    x = w['gpt_neox.embed_in.weight'][ids]
    for l in range(c['num_hidden_layers']):
        p = f'gpt_neox.layers.{l}.'
        a = layer_norm(x, w[p + 'input_layernorm.weight'], w[p + 'input_layernorm.bias'], eps)
        qkv = lin(w, p + 'attention.query_key_value', a).view(T, H, 3 * Dh).transpose(0, 1)  # per head q, k, v
        q, k, v = qkv.chunk(3, -1)
        attn = lin(w, p + 'attention.dense', attention(rot(q), rot(k), v))
        mlp = lambda h: lin(w, p + 'mlp.dense_4h_to_h', f(lin(w, p + 'mlp.dense_h_to_4h', h)))  # noqa: E731
        ln2 = lambda h: layer_norm(h, w[p + 'post_attention_layernorm.weight'], w[p + 'post_attention_layernorm.bias'], eps)  # noqa: E731
        if c['use_parallel_residual']:
            x = x + attn + mlp(ln2(x))
        else:
            x = x + attn
            x = x + mlp(ln2(x))
    return layer_norm(x, w['gpt_neox.final_layer_norm.weight'], w['gpt_neox.final_layer_norm.bias'], eps)


def llama_hidden(c, w, ids):
    T, H = len(ids), c['num_attention_heads']
    Hkv = c.get('num_key_value_heads', H)
    Dh = c.get('head_dim') or c['hidden_size'] // H
    eps = c['rms_norm_eps']
    cos, sin = rope(T, Dh, c.get('rope_theta', 10000))
    x = w['model.embed_tokens.weight'][ids]
    for l in range(c['num_hidden_layers']):
        p = f'model.layers.{l}.'
        a = rms_norm(x, w[p + 'input_layernorm.weight'], eps)
        q = lin(w, p + 'self_attn.q_proj', a).view(T, H, Dh).transpose(0, 1)
        k = lin(w, p + 'self_attn.k_proj', a).view(T, Hkv, Dh).transpose(0, 1)
        v = lin(w, p + 'self_attn.v_proj', a).view(T, Hkv, Dh).transpose(0, 1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        x = x + lin(w, p + 'self_attn.o_proj', attention(q, k, v))
        m = rms_norm(x, w[p + 'post_attention_layernorm.weight'], eps)
        x = x + lin(w, p + 'mlp.down_proj', act('silu')(lin(w, p + 'mlp.gate_proj', m)) * lin(w, p + 'mlp.up_proj', m))
    return rms_norm(x, w['model.norm.weight'], eps)


HIDDEN = {'gpt2': gpt2_hidden, 'gpt_neox': neox_hidden, 'llama': llama_hidden, 'qwen2': llama_hidden}


# ------------------------------------------------------------------------------------------ scoring


def score(c, w, rows):
    """Logits [num_labels, B] of right-padded rows, read where transformers reads them."""
    pad = c['pad_token_id']
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    for r in rows:
        assert pad not in r, f'pad_token_id {pad} occurs in a row: transformers would read another token'
    non_pad = (ids != pad).int()
    last = (torch.arange(width) * non_pad).argmax(-1)  # transformers >= 4.48
    first_pad = (torch.eq(ids, pad).int().argmax(-1) - 1) % width  # older transformers
    assert torch.equal(last, first_pad), 'the two transformers rules pick different tokens'
    out = []
    for b in range(len(rows)):
        h = HIDDEN[c['model_type']](c, w, ids[b])  # [T, D]
        out.append(h[last[b]] @ w['score.weight'].T)  # [num_labels]
    logits = torch.stack(out, 1)  # [num_labels, B]
    bias = c.get('quorum_score_bias')
    return logits + torch.tensor(bias, dtype=torch.float64)[:, None] if bias else logits


def merge_peft(base_cfg, base_w, adapter_dir):
    cfg = read_json(os.path.join(adapter_dir, 'adapter_config.json'))
    assert cfg['peft_type'] == 'LORA' and cfg['task_type'] == 'SEQ_CLS'
    lora = read_safetensors(os.path.join(adapter_dir, 'adapter_model.safetensors'))
    w = dict(base_w)

    def pattern(p, module, fallback):
        for key, value in (p or {}).items():
            if re.match(rf'(.*\.)?{re.escape(key)}$', module):
                return value
        return fallback

    head = 'base_model.model.score.modules_to_save.weight'
    assert head in lora, f'{adapter_dir}: the member lost its reward head ({head} is missing)'
    w['score.weight'] = lora[head]
    for name, A in lora.items():
        if not name.endswith('.lora_A.weight'):
            continue
        module = name[len('base_model.model.') : -len('.lora_A.weight')]
        B = lora[name.replace('lora_A', 'lora_B')]
        r = pattern(cfg.get('rank_pattern'), module, cfg['r'])
        s = pattern(cfg.get('alpha_pattern'), module, cfg['lora_alpha']) / r
        assert A.shape[0] == r and B.shape[1] == r, f'{name}: rank {A.shape[0]}, adapter_config says {r}'
        delta = s * (B @ A)  # [out, in]
        w[module + '.weight'] = w[module + '.weight'] + (delta.T if cfg['fan_in_fan_out'] else delta)
    return w


def members(folder):
    """[(name, config, weights)] of every reward model in an export folder."""
    if os.path.exists(os.path.join(folder, 'config.json')):
        return [(os.path.basename(folder), read_json(os.path.join(folder, 'config.json')), read_safetensors(os.path.join(folder, 'model.safetensors')))]
    subs = sorted((d for d in os.listdir(folder) if d.startswith('member-')), key=lambda d: int(d.split('-')[1]))
    base = os.path.join(folder, 'base')
    if os.path.isdir(base):
        cfg = read_json(os.path.join(base, 'config.json'))
        w = read_safetensors(os.path.join(base, 'model.safetensors'))
        return [(d, cfg, merge_peft(cfg, w, os.path.join(folder, d))) for d in subs]
    return [m for d in subs for m in members(os.path.join(folder, d))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('folder')
    ap.add_argument('--rows', help='ids and Quorum scores (default FOLDER/quorum-rows.json)')
    args = ap.parse_args()
    rows = read_json(args.rows or os.path.join(args.folder, 'quorum-rows.json'))
    torch.set_grad_enabled(False)
    logits = []
    for name, cfg, w in members(args.folder):
        s = score(cfg, w, rows['ids'])
        print(f'{name} ({cfg["architectures"][0]}, {cfg["model_type"]}, pad_token_id {cfg["pad_token_id"]}):')
        for row in s.tolist():
            print('  ' + ' '.join(f'{x:+.6f}' for x in row))
        logits.extend(s.tolist())
    quorum = rows.get('scores')
    if quorum is not None:
        diff = max(abs(a - b) for qa, pa in zip(quorum, logits) for a, b in zip(qa, pa))
        assert len(quorum) == len(logits), f'{len(logits)} members here, Quorum scored {len(quorum)}'
        print('quorum:')
        for row in quorum:
            print('  ' + ' '.join(f'{x:+.6f}' for x in row))
        print(f'max |torch - quorum| = {diff:.3e} over {len(logits)} members x {len(rows["ids"])} rows')
        if diff > 1e-4:
            sys.exit(1)


if __name__ == '__main__':
    main()
