#!/usr/bin/env python3
"""rlhf-transformer vs PyTorch (`transformers`' GPT2LMHeadModel) on the same config, batch,
sequence length and thread count, timed in one run.

Measures (median over ITERS after one warm-up; each row run as alternating ours/PyTorch rounds,
the ratio the median of the rounds' ratios):
  - training step (forward + backward + AdamW), tokens/s: tiny (4 layers, 4 heads, n_embd 128,
    T 128, vocab 512, B 16) and GPT-2 small (B 4, T 64);
  - KV-cache generation, 16 left-padded prompts of 4..11 tokens, 56 new tokens (greedy, no EOS),
    tokens/s: tiny and GPT-2 small;
  - our time per decoded token at growing context (the KV cache makes it linear).

Run by hand (not in CI):
    python3 -m venv ~/.cache/venv-torch && ~/.cache/venv-torch/bin/pip install torch transformers
    cargo build --release -p rlhf-transformer --example bench_lm
    RAYON_NUM_THREADS=2 ~/.cache/venv-torch/bin/python benches/transformer_vs_torch.py [--threads 2] [--quick]
        [--tiny-iters 20] [--small-iters 5] [--rounds 3] [--only small-step]
    (--only: one row, by key: tiny-step, tiny-generate, small-step, small-generate, curve)
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "examples", "bench_lm")

TINY = dict(n_layer=4, n_head=4, n_embd=128, vocab_size=512)
SMALL = dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50257)


def ours(mode, cfg, *rest, threads):
    args = [BIN, mode, str(cfg["n_layer"]), str(cfg["n_head"]), str(cfg["n_embd"]), str(cfg["vocab_size"])]
    args += [str(x) for x in rest]
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_model(cfg):
    config = GPT2Config(n_positions=1024, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=None, eos_token_id=None, pad_token_id=0, **cfg)
    torch.manual_seed(0)
    return GPT2LMHeadModel(config)


def torch_step(cfg, b, t, iters):
    model = torch_model(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, cfg["vocab_size"], (b, t))
    times = []
    for i in range(iters + 1):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        if i > 0:
            times.append(time.perf_counter() - start)
    s = statistics.median(times)
    return {"seconds": s, "tokens_per_s": b * t / s}


def torch_generate(cfg, prompts, new, iters):
    model = torch_model(cfg).eval()
    g = torch.Generator().manual_seed(1)
    lengths = [4 + i % 8 for i in range(prompts)]
    t = max(lengths)
    ids = torch.zeros((prompts, t), dtype=torch.long)
    mask = torch.zeros((prompts, t), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, t - n:] = torch.randint(0, cfg["vocab_size"], (n,), generator=g)
        mask[i, t - n:] = 1
    times = []
    with torch.no_grad():
        for i in range(iters + 1):
            start = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new,
                                 min_new_tokens=new, do_sample=False, pad_token_id=0)
            assert out.shape[1] == t + new
            if i > 0:
                times.append(time.perf_counter() - start)
    s = statistics.median(times)
    return {"seconds": s, "tokens_per_s": prompts * new / s}


def row(name, rounds, ours_fn, torch_fn):
    """Runs ours and PyTorch alternately `rounds` times (so a noisy neighbour hits both sides
    alike) and prints the median tokens/s of each and the median of the per-round ratios."""
    pairs = []
    for _ in range(rounds):
        a, b = ours_fn(), torch_fn()
        pairs.append((a["tokens_per_s"], b["tokens_per_s"]))
    ratios = [a / b for a, b in pairs]
    ours_med = statistics.median(a for a, _ in pairs)
    torch_med = statistics.median(b for _, b in pairs)
    each = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"| {name} | {ours_med:.0f} | {torch_med:.0f} | {statistics.median(ratios):.2f}x ({each}) |",
          flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="fewer iterations, tiny config only")
    p.add_argument("--tiny-iters", type=int, default=20, help="timed iterations, tiny config")
    p.add_argument("--small-iters", type=int, default=5, help="timed iterations, GPT-2 small")
    p.add_argument("--rounds", type=int, default=3, help="alternating ours/PyTorch rounds per row")
    p.add_argument("--only", choices=["tiny-step", "tiny-generate", "small-step", "small-generate", "curve"],
                   help="measure this row only")
    a = p.parse_args()
    wanted = lambda key: a.only is None or a.only == key
    torch.set_num_threads(a.threads)
    it = 3 if a.quick else a.tiny_iters
    small = a.small_iters
    rounds = 1 if a.quick else a.rounds
    th = a.threads
    print(f"torch {torch.__version__}, {a.threads} threads; ratio: median of {rounds} alternating rounds")
    print("| measurement | rlhf tokens/s | PyTorch tokens/s | ratio (each round) |")
    print("|---|---|---|---|")
    if wanted("tiny-step"):
        row("train step, tiny (L4 H4 C128 V512, B16 T128)", rounds,
            lambda: ours("step", TINY, 16, 128, it, threads=th), lambda: torch_step(TINY, 16, 128, it))
    if wanted("tiny-generate"):
        row("generate, tiny (16 prompts, 56 new)", rounds,
            lambda: ours("generate", TINY, 16, 56, it, threads=th),
            lambda: torch_generate(TINY, 16, 56, it))
    if not a.quick and wanted("small-step"):
        row("train step, GPT-2 small (B4 T64)", rounds,
            lambda: ours("step", SMALL, 4, 64, small, threads=th),
            lambda: torch_step(SMALL, 4, 64, small))
    if not a.quick and wanted("small-generate"):
        row("generate, GPT-2 small (16 prompts, 56 new)", rounds,
            lambda: ours("generate", SMALL, 16, 56, small, threads=th),
            lambda: torch_generate(SMALL, 16, 56, small))
    if wanted("curve"):
        curve = ours("decode-curve", TINY, 16, threads=th)
        print("ours, tiny, B16: seconds per decode step at context length:",
              json.dumps(curve["seconds_per_step_at_length"]))


if __name__ == "__main__":
    main()
