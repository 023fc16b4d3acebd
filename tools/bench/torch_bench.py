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
p.add_argument("--modes", default="lm_fwd,lm_step,rm_fwd,rm_step")
p.add_argument("--batch", type=int, default=32)
args = p.parse_args()

V, T, D, L, H, B = 512, 128, 128, 4, 4, args.batch
torch.set_num_threads(args.threads)
torch.manual_seed(0)


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
