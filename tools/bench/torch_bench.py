"""PyTorch 1.13 CPU twin of Quorum's reference model, for `npm run bench`.

Same architecture as @quorum/backbone's GPT with the `micro` preset and vocab 512: learned positions,
pre-LayerNorm blocks with separate q/k/v/o linears, causal softmax attention, tanh-GELU MLP (4x),
final LayerNorm, LM head tied to the token embedding; reward = linear head on the last token's hidden
state, the top block computing queries, attention output and MLP for that token only (as Quorum's
gptLastHidden). Same modes as tools/bench/engine.mjs:
  lm_fwd   LM loss (next-token cross-entropy over T-1 positions), no gradients
  lm_step  LM loss + backward + AdamW(lr 1e-3, weight_decay 0.01)
  rm_fwd   rewards of B sequences, no gradients
  rm_step  Bradley-Terry loss on B pairs (2B sequences in one forward) + backward + AdamW
Run with Debian's python: /usr/bin/python3 tools/bench/torch_bench.py [--threads 2] [--quick] [--json]
With --model llama|gpt2: the pretrained-size rows of tools/bench/pretrained.mjs instead (see below and README.md).
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--quick", action="store_true")
p.add_argument("--json", action="store_true")
p.add_argument("--modes", default=None, help="default lm_fwd,lm_step,rm_fwd,rm_step (pretrained: lm_fwd,rm_fwd,rm_step)")
p.add_argument("--batch", type=int, default=None, help="sequences per call (default 32; pretrained: 2)")
p.add_argument("--model", default="reference", choices=["reference", "llama", "gpt2"],
               help="reference: Quorum's micro model (engines table); llama / gpt2: the pretrained-size rows")
p.add_argument("--layers", type=int, default=None, help="pretrained: blocks to build (default all: 30 / 12)")
p.add_argument("--pairs", type=int, default=1, help="pretrained: pairs of the rm_step (2 x pairs sequences)")
p.add_argument("--reps", type=int, default=None, help="pretrained: timed calls after one warm-up (default 3; --quick 1)")
p.add_argument("--blas-only", action="store_true", help="print which BLAS torch runs on (JSON) and exit")
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)


def blas_in_use():
    """Which BLAS library torch's matmuls run on (read from the process's memory map after a matmul).
    Debian's torch calls whatever libblas.so.3 the alternatives system points at: with only libblas3
    installed that is the netlib reference BLAS, tens of times slower than OpenBLAS."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if "blas" in name or "mkl" in name or "blis" in name:
                libs.add(os.path.realpath(path))
    text = " ".join(sorted(libs)).lower()
    kind = next((k for k in ("openblas", "mkl", "blis", "atlas") if k in text), None)
    if kind is None:
        kind = "reference (netlib)" if "/blas/libblas.so" in text else "unknown"
    return {"kind": kind, "libs": sorted(libs)}


if args.blas_only:
    print(json.dumps(blas_in_use()), flush=True)
    sys.exit(0)


def med(xs):
    s = sorted(xs)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if args.model != "reference":
    # ---------------------------------------------------------------- pretrained-size rows
    # Plain-torch twins of tools/bench/pretrained.mjs, random weights, float32, every sequence full length.
    # llama: SmolLM-135M-shaped (Hugging Face LlamaForCausalLM's eager layout: RMSNorm, GQA with repeat_kv,
    # rotate-half RoPE, SwiGLU, no biases, tied head); gpt2: GPT-2 small-shaped (learned positions, LayerNorm,
    # separate q/k/v/o linears as Quorum computes them, tanh-GELU, tied head). The reward = a linear head on the
    # last token's final hidden state, the top block computing queries, attention output and MLP for that
    # token only (as Quorum's gptLastHidden and the reference twin below).
    SHAPES = {
        "llama": dict(V=49152, T=512, D=576, L=30, H=9, Hkv=3, Dh=64, F=1536, theta=10000.0, eps=1e-5),
        "gpt2": dict(V=50257, T=512, D=768, L=12, H=12, Hkv=12, Dh=64, F=3072, theta=None, eps=1e-5),
    }
    S = SHAPES[args.model]
    PV, PT, PD, PH, PHkv, PDh, PF = S["V"], S["T"], S["D"], S["H"], S["Hkv"], S["Dh"], S["F"]
    PL = args.layers or S["L"]
    llama = args.model == "llama"

    class RMSNorm(nn.Module):
        def __init__(self, d, eps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))
            self.eps = eps

        def forward(self, x):  # LlamaRMSNorm
            return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    def repeat_kv(x, n):  # [B, Hkv, T, Dh] -> [B, Hkv*n, T, Dh], as transformers' repeat_kv
        if n == 1:
            return x
        b, hkv, t, dh = x.shape
        return x[:, :, None, :, :].expand(b, hkv, n, t, dh).reshape(b, hkv * n, t, dh)

    class PBlock(nn.Module):
        def __init__(self):
            super().__init__()
            bias = not llama
            norm = (lambda: RMSNorm(PD, S["eps"])) if llama else (lambda: nn.LayerNorm(PD, eps=S["eps"]))
            self.ln1, self.ln2 = norm(), norm()
            self.q = nn.Linear(PD, PH * PDh, bias=bias)
            self.k = nn.Linear(PD, PHkv * PDh, bias=bias)
            self.v = nn.Linear(PD, PHkv * PDh, bias=bias)
            self.o = nn.Linear(PH * PDh, PD, bias=bias)
            if llama:
                self.gate = nn.Linear(PD, PF, bias=False)
            self.fc = nn.Linear(PD, PF, bias=bias)  # Llama's up_proj
            self.proj = nn.Linear(PF, PD, bias=bias)  # Llama's down_proj

        def forward(self, x, mask, cos, sin, last_only=False):
            b, t, _ = x.shape
            tq = 1 if last_only else t
            h = self.ln1(x)
            q = self.q(h[:, -1:, :] if last_only else h).view(b, tq, PH, PDh).transpose(1, 2)  # [B, H, tq, Dh]
            k = self.k(h).view(b, t, PHkv, PDh).transpose(1, 2)  # [B, Hkv, T, Dh]
            v = self.v(h).view(b, t, PHkv, PDh).transpose(1, 2)
            if llama:
                q = q * cos[t - tq:t] + rotate_half(q) * sin[t - tq:t]
                k = k * cos[:t] + rotate_half(k) * sin[:t]
                k, v = repeat_kv(k, PH // PHkv), repeat_kv(v, PH // PHkv)  # [B, H, T, Dh]
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(PDh))  # [B, H, tq, T]
            if not last_only:
                att = att + mask[:t, :t]
            y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, tq, PH * PDh)
            x = (x[:, -1:, :] if last_only else x) + self.o(y)
            h2 = self.ln2(x)
            if llama:
                return x + self.proj(F.silu(self.gate(h2)) * self.fc(h2))
            return x + self.proj(F.gelu(self.fc(h2), approximate="tanh"))

    class PretrainedLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(PV, PD)
            nn.init.normal_(self.wte.weight, std=0.02)
            self.wpe = None if llama else nn.Embedding(PT, PD)
            self.blocks = nn.ModuleList([PBlock() for _ in range(PL)])
            self.lnf = RMSNorm(PD, S["eps"]) if llama else nn.LayerNorm(PD, eps=S["eps"])
            self.register_buffer("mask", torch.triu(torch.full((PT, PT), float("-inf")), 1), persistent=False)
            if llama:  # LlamaRotaryEmbedding: cat(freqs, freqs) over the head
                inv = 1.0 / (S["theta"] ** (torch.arange(0, PDh, 2, dtype=torch.float32) / PDh))
                freqs = torch.outer(torch.arange(PT, dtype=torch.float32), inv)
                emb = torch.cat((freqs, freqs), dim=-1)  # [T, Dh]
                self.register_buffer("cos", emb.cos(), persistent=False)
                self.register_buffer("sin", emb.sin(), persistent=False)
            else:
                self.cos = self.sin = None

        def hidden(self, idx, last_only=False):
            x = self.wte(idx)
            if self.wpe is not None:
                x = x + self.wpe(torch.arange(idx.shape[1]))
            for i, blk in enumerate(self.blocks):
                x = blk(x, self.mask, self.cos, self.sin, last_only and i == len(self.blocks) - 1)
            return self.lnf(x)

        def lm_loss(self, idx):
            logits = self.hidden(idx)[:, :-1, :] @ self.wte.weight.t()  # tied head
            return F.cross_entropy(logits.reshape(-1, PV), idx[:, 1:].reshape(-1))

    class PretrainedRM(nn.Module):
        def __init__(self):
            super().__init__()
            self.gpt = PretrainedLM()
            self.head = nn.Linear(PD, 1)
            nn.init.normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

        def forward(self, idx):
            return self.head(self.gpt.hidden(idx, last_only=True)[:, -1, :]).squeeze(-1)

    PB, PP = args.batch or 2, args.pairs
    reps = args.reps or (1 if args.quick else 3)
    rm = PretrainedRM()
    opt = torch.optim.AdamW(rm.parameters(), lr=1e-5, weight_decay=0.01)
    idx = torch.randint(0, PV, (PB, PT))
    pair = torch.randint(0, PV, (2 * PP, PT))

    def p_lm_fwd():
        with torch.no_grad():
            rm.gpt.lm_loss(idx).item()

    def p_rm_fwd():
        with torch.no_grad():
            rm(idx).sum().item()

    def p_rm_step():
        opt.zero_grad(set_to_none=True)
        r = rm(pair)
        F.softplus(-(r[:PP] - r[PP:])).mean().backward()  # Bradley-Terry: -log sigmoid(r_chosen - r_rejected)
        opt.step()

    ptable = {"lm_fwd": (p_lm_fwd, PB * PT), "rm_fwd": (p_rm_fwd, PB * PT), "rm_step": (p_rm_step, 2 * PP * PT)}
    load_before = os.getloadavg()[0]
    pmodes = {}
    for name in (args.modes or "lm_fwd,rm_fwd,rm_step").split(","):
        fn, tokens = ptable[name]
        print(f"  · torch {args.model} {name} ({tokens} tokens/call) …", file=sys.stderr, flush=True)
        fn()  # warm-up
        times, cpu = [], []
        for _ in range(reps):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        t = {"medianMs": med(times), "minMs": min(times), "maxMs": max(times), "cpuMs": med(cpu), "reps": reps,
             "times": times, "tokens": tokens, "tokensPerSec": tokens / (med(times) / 1000),
             "maxRssMiB": max_rss_mib()}  # process RSS high-water mark so far (modes run in this order)
        pmodes[name] = t
        print(f"  · torch {args.model} {name}: {t['medianMs']:.0f} ms median of {reps}, max RSS "
              f"{t['maxRssMiB'] / 1024:.2f} GiB (load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    n_lm = sum(p.numel() for p in rm.gpt.parameters())
    result = {
        "engine": "torch",
        "model": args.model,
        "blas": blas_in_use(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "openblasThreads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "config": {"vocabSize": PV, "contextLength": PT, "dModel": PD, "nLayers": PL, "nHeads": PH, "nKvHeads": PHkv,
                   "headDim": PDh, "mlpHidden": PF, "batch": PB, "pairs": PP, "params": n_lm,
                   "rmParams": sum(p.numel() for p in rm.parameters())},
        "modes": pmodes,
        "load": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "maxRssMiB": max_rss_mib(),
    }
    if args.json:
        print("@@BENCH_RESULT " + json.dumps(result), flush=True)
    else:
        print(f"torch {torch.__version__} {args.model} layers={PL} threads={torch.get_num_threads()} params={n_lm}")
        for name, t in pmodes.items():
            print(f"{name:10s} {t['medianMs']:9.1f} ms  {t['tokensPerSec']:9.0f} tok/s")
    sys.exit(0)

args.modes = args.modes or "lm_fwd,lm_step,rm_fwd,rm_step"
V, T, D, L, H, B = 512, 128, 128, 4, 4, args.batch or 32


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D, eps=1e-5)
        self.q = nn.Linear(D, D)
        self.k = nn.Linear(D, D)
        self.v = nn.Linear(D, D)
        self.o = nn.Linear(D, D)
        self.ln2 = nn.LayerNorm(D, eps=1e-5)
        self.fc = nn.Linear(D, 4 * D)
        self.proj = nn.Linear(4 * D, D)
        self.register_buffer("mask", torch.triu(torch.full((T, T), float("-inf")), 1))

    def forward(self, x, last_only=False):
        # last_only: queries and everything after attention for the last token only (what a reward reads;
        # Quorum's gptLastHidden does the same), keys and values for every token.
        b, t, d = x.shape
        h = self.ln1(x)
        heads = lambda z, n: z.view(b, n, H, d // H).transpose(1, 2)  # [B, H, n, Dh]
        tq = 1 if last_only else t
        q = heads(self.q(h[:, -1:, :] if last_only else h), tq)
        k, v = heads(self.k(h), t), heads(self.v(h), t)
        att = (q * (1.0 / math.sqrt(d // H))) @ k.transpose(-2, -1)
        if not last_only:
            att = att + self.mask[:t, :t]
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, tq, d)
        x = (x[:, -1:, :] if last_only else x) + self.o(y)
        x = x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))
        return x


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, D)
        self.wpe = nn.Embedding(T, D)
        self.blocks = nn.ModuleList([Block() for _ in range(L)])
        self.lnf = nn.LayerNorm(D, eps=1e-5)

    def hidden(self, idx, last_only=False):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for i, blk in enumerate(self.blocks):
            x = blk(x, last_only and i == len(self.blocks) - 1)
        return self.lnf(x)

    def lm_loss(self, idx):
        h = self.hidden(idx)[:, :-1, :]
        logits = h @ self.wte.weight.t()  # tied head
        return F.cross_entropy(logits.reshape(-1, V), idx[:, 1:].reshape(-1))


class RewardModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.gpt = GPT()
        self.head = nn.Linear(D, 1)

    def forward(self, idx):
        return self.head(self.gpt.hidden(idx, last_only=True)[:, -1, :]).squeeze(-1)


def timeit(fn, slow_scale):
    warm, min_reps, max_reps, budget = (1, 2, 3, 6.0 * slow_scale) if args.quick else (1, 3, 7, 15.0 * slow_scale)
    for _ in range(warm):
        fn()
    times, cpu, spent = [], [], 0.0
    while len(times) < max_reps and (len(times) < min_reps or spent < budget):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        times.append(dt * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        spent += dt
    med = lambda xs: sorted(xs)[len(xs) // 2] if len(xs) % 2 else sum(sorted(xs)[len(xs) // 2 - 1:len(xs) // 2 + 1]) / 2
    return {"medianMs": med(times), "minMs": min(times), "maxMs": max(times), "cpuMs": med(cpu),
            "reps": len(times), "times": times}


lm = GPT()
rm = RewardModel()
lm_opt = torch.optim.AdamW(lm.parameters(), lr=1e-3, weight_decay=0.01)
rm_opt = torch.optim.AdamW(rm.parameters(), lr=1e-3, weight_decay=0.01)
idx = torch.randint(0, V, (B, T))
pair = torch.randint(0, V, (2 * B, T))


def lm_fwd():
    with torch.no_grad():
        lm.lm_loss(idx).item()


def lm_step():
    lm_opt.zero_grad(set_to_none=True)
    loss = lm.lm_loss(idx)
    loss.backward()
    lm_opt.step()


def rm_fwd():
    with torch.no_grad():
        rm(idx).sum().item()


def rm_step():
    rm_opt.zero_grad(set_to_none=True)
    r = rm(pair)
    loss = F.softplus(-(r[:B] - r[B:])).mean()  # -log sigmoid(r_chosen - r_rejected)
    loss.backward()
    rm_opt.step()


table = {"lm_fwd": (lm_fwd, B * T, 1), "lm_step": (lm_step, B * T, 2), "rm_fwd": (rm_fwd, B * T, 1),
         "rm_step": (rm_step, 2 * B * T, 2)}
load_before = os.getloadavg()[0]
modes = {}
for name in args.modes.split(","):
    fn, tokens, scale = table[name]
    print(f"  · torch {name} …", file=sys.stderr, flush=True)
    t = timeit(fn, scale)
    t["tokens"] = tokens
    t["tokensPerSec"] = tokens / (t["medianMs"] / 1000)
    modes[name] = t
    print(f"  · torch {name}: {t['medianMs']:.0f} ms median of {t['reps']} (load {os.getloadavg()[0]:.2f})",
          file=sys.stderr, flush=True)


result = {
    "engine": "torch",
    "blas": blas_in_use(),
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
    "openblasThreads": os.environ.get("OPENBLAS_NUM_THREADS"),
    "model": {"vocabSize": V, "contextLength": T, "dModel": D, "nLayers": L, "nHeads": H, "batch": B,
              "params": sum(p.numel() for p in lm.parameters()),
              "rmParams": sum(p.numel() for p in rm.parameters())},
    "modes": modes,
    "load": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    "maxRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}
if args.json:
    print("@@BENCH_RESULT " + json.dumps(result), flush=True)
else:
    print(f"torch {torch.__version__} threads={torch.get_num_threads()} params={result['model']['params']}")
    for name, t in modes.items():
        print(f"{name:10s} {t['medianMs']:9.1f} ms  {t['tokensPerSec']:9.0f} tok/s")
