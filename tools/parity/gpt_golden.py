#!/usr/bin/env python3
"""Golden numerical fixtures for @quorum/backbone's transformer, computed with PyTorch.

Builds the same decoder as packages/backbone/src/model.ts (pre-LayerNorm, causal self-attention that
always sees its own position and never a padded key, tanh-GELU MLP, learned positions or RoPE, tied
or untied LM head; positions = cumsum(mask) - 1) with fixed random weights, runs it in float64 on a
left-padded batch, and writes the weights (float32 values, names and [in, out] layout of the tfjs
model), the inputs, the logits and the gradients of the masked next-token loss to
packages/backbone/fixtures/gpt-golden-<case>.json.

Run with Debian's PyTorch:  /usr/bin/python3 tools/parity/gpt_golden.py
"""
import json
import math
import os
import sys

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'packages', 'backbone', 'fixtures')

CASES = {
    'learned-tied': dict(vocabSize=23, contextLength=12, dModel=16, nLayers=2, nHeads=4, mlpRatio=4,
                         dropout=0, positional='learned', layerNormEps=1e-5, tieEmbeddings=True),
    'rope-untied': dict(vocabSize=23, contextLength=12, dModel=16, nLayers=2, nHeads=2, mlpRatio=2,
                        dropout=0, positional='rope', layerNormEps=1e-5, tieEmbeddings=False),
}


def shapes(c):
    V, T, D, F = c['vocabSize'], c['contextLength'], c['dModel'], c['mlpRatio'] * c['dModel']
    s = {'wte': [V, D]}
    if c['positional'] == 'learned':
        s['wpe'] = [T, D]
    for l in range(c['nLayers']):
        p = f'h.{l}'
        s[f'{p}.ln_1.g'] = [D]
        s[f'{p}.ln_1.b'] = [D]
        for m in 'qkvo':
            s[f'{p}.attn.{m}.w'] = [D, D]
            s[f'{p}.attn.{m}.b'] = [D]
        s[f'{p}.ln_2.g'] = [D]
        s[f'{p}.ln_2.b'] = [D]
        s[f'{p}.mlp.fc.w'] = [D, F]
        s[f'{p}.mlp.fc.b'] = [F]
        s[f'{p}.mlp.proj.w'] = [F, D]
        s[f'{p}.mlp.proj.b'] = [D]
    s['ln_f.g'] = [D]
    s['ln_f.b'] = [D]
    if not c['tieEmbeddings']:
        s['lm_head.w'] = [V, D]
    return s


def init_weights(c, gen):
    w = {}
    for name, shape in shapes(c).items():
        if name.endswith('.g'):
            t = 1 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith('.b'):
            t = 0.1 * torch.randn(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen) / math.sqrt(shape[0]) if name.endswith('.w') else 0.5 * torch.randn(shape, generator=gen)
        # round to float32 (what the fixture stores), compute in float64
        w[name] = t.float().double().requires_grad_(True)
    return w


def layer_norm(x, g, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * g + b


def gelu(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def rope(x, pos):  # x [B, H, T, Dh], pos [B, T]
    dh = x.shape[-1]
    inv = torch.tensor([10000 ** (-(2 * i) / dh) for i in range(dh // 2)], dtype=torch.float64)
    ang = pos.double()[:, :, None] * inv[None, None, :]  # [B, T, Dh/2]
    emb = torch.cat([ang, ang], -1)[:, None]  # [B, 1, T, Dh]
    x1, x2 = x[..., : dh // 2], x[..., dh // 2:]
    return x * emb.cos() + torch.cat([-x2, x1], -1) * emb.sin()


def forward(c, w, ids, mask):
    B, T = ids.shape
    D, H = c['dModel'], c['nHeads']
    dh = D // H
    pos = torch.clamp(torch.cumsum(mask, 1) - 1, min=0).long()
    x = w['wte'][ids]
    if c['positional'] == 'learned':
        x = x + w['wpe'][pos]
    causal = torch.tril(torch.ones(T, T, dtype=torch.float64))
    eye = torch.eye(T, dtype=torch.float64)
    allowed = torch.maximum(mask.double()[:, None, :], eye) * causal  # [B, T, T]
    bias = ((allowed - 1) * 1e9)[:, None]  # [B, 1, T, T]
    for l in range(c['nLayers']):
        p = f'h.{l}'
        lin = lambda t, m: t @ w[f'{p}.{m}.w'] + w[f'{p}.{m}.b']
        h = layer_norm(x, w[f'{p}.ln_1.g'], w[f'{p}.ln_1.b'], c['layerNormEps'])
        heads = lambda t: t.view(B, T, H, dh).transpose(1, 2)
        q, k, v = heads(lin(h, 'attn.q')), heads(lin(h, 'attn.k')), heads(lin(h, 'attn.v'))
        if c['positional'] == 'rope':
            q, k = rope(q, pos), rope(k, pos)
        att = torch.softmax((q / math.sqrt(dh)) @ k.transpose(-1, -2) + bias, -1)
        y = (att @ v).transpose(1, 2).reshape(B, T, D)
        x = x + lin(y, 'attn.o')
        h2 = layer_norm(x, w[f'{p}.ln_2.g'], w[f'{p}.ln_2.b'], c['layerNormEps'])
        x = x + lin(gelu(lin(h2, 'mlp.fc')), 'mlp.proj')
    x = layer_norm(x, w['ln_f.g'], w['ln_f.b'], c['layerNormEps'])
    head = w['lm_head.w'] if not c['tieEmbeddings'] else w['wte']
    return x @ head.T  # [B, T, V]


def rounded(values, digits):
    # 9 significant digits recover a float32 exactly; 10 are plenty for float64 references at 1e-4
    return [float(f'{v:.{digits}g}') for v in values]


def main():
    os.makedirs(OUT, exist_ok=True)
    for case, c in CASES.items():
        gen = torch.Generator().manual_seed(1234)
        w = init_weights(c, gen)
        B, T = 3, 9
        ids = torch.randint(0, c['vocabSize'], (B, T), generator=gen)
        mask = torch.ones(B, T, dtype=torch.long)
        mask[1, :3] = 0  # left padding
        mask[2, 6:] = 0  # right padding
        ids[mask == 0] = 0
        logits = forward(c, w, ids, mask)
        logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]  # [B, T-1]
        wt = mask[:, 1:].double()
        loss = -(logp * wt).sum() / wt.sum()
        loss.backward()
        fix = {
            'generator': 'tools/parity/gpt_golden.py (PyTorch %s, float64)' % torch.__version__,
            'config': c,
            'ids': ids.tolist(),
            'mask': mask.tolist(),
            'loss': loss.item(),
            'weights': {n: rounded(t.detach().float().flatten().tolist(), 9) for n, t in w.items()},
            'logits': rounded(logits.detach().flatten().tolist(), 10),
            'grads': {n: rounded(t.grad.flatten().tolist(), 10) for n, t in w.items()},
        }
        path = os.path.join(OUT, f'gpt-golden-{case}.json')
        with open(path, 'w') as f:
            json.dump(fix, f, separators=(',', ':'))
        print(f'{path}: loss {loss.item():.6f}, {os.path.getsize(path)} bytes')


if __name__ == '__main__':
    sys.exit(main())
