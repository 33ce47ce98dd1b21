#!/usr/bin/env python3
"""PyTorch's side of `gpt_bench` (the rlhf GPU bundle): the same GPT-2 124M measurements on the
same card, printed as the same JSON lines, and the comparison table.

  gpt_bench_torch.py [--batch 16] [--seq 1024] [--steps 5] [--prompts 64] [--new 256]
                     [--no-compile] [--peak-tflops 989.4]
  gpt_bench_torch.py --compare RLHF.jsonl TORCH.jsonl

Training: Hugging Face GPT2LMHeadModel from GPT2Config() (124M, random init, nothing
downloaded), SDPA attention, bf16 autocast with fp32 weights, fused AdamW (weight decay 0.1),
clip_grad_norm_ 1.0; eager first, then torch.compile when it works. Generation: HF `generate`
with the KV cache, bf16 weights, sampling at temperature 1, 64-token prompts, exactly `--new`
new tokens (min_new_tokens = max_new_tokens). MFU uses 6 N + 6 L T C FLOPs per token.
"""

import argparse
import json
import sys
import time

LLMC_H100_TOKENS_PER_S = 468_000.0


def emit(row):
    print(json.dumps(row), flush=True)


def train(args, torch, model_cls, config_cls, compiled):
    config = config_cls(n_positions=max(1024, args.seq))
    model = model_cls(config, attn_implementation="sdpa").cuda()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
    step_model = torch.compile(model) if compiled else model
    g = torch.Generator(device="cuda").manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), device="cuda", generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(2 if compiled else 1):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    tokens_per_s = args.batch * args.seq / seconds
    flops = 6 * n_params + 6 * config.n_layer * args.seq * config.n_embd
    mfu = tokens_per_s * flops / (args.peak_tflops * 1e12)
    name = "torch-compile" if compiled else "torch-eager"
    print(f"train    {name}: {seconds * 1e3:.1f} ms/step, {tokens_per_s:.0f} tokens/s, "
          f"MFU {100 * mfu:.1f}%, loss {loss.item():.3f}", flush=True)
    emit({"bench": "train", "impl": name, "batch": args.batch, "seq": args.seq,
          "tokens_per_s": round(tokens_per_s, 1), "mfu": round(mfu, 4), "params": n_params})
    del model, opt, step_model
    torch.cuda.empty_cache()


def generate(args, torch, model_cls, config_cls):
    model = model_cls(config_cls(), attn_implementation="sdpa").cuda().to(torch.bfloat16).eval()
    g = torch.Generator(device="cuda").manual_seed(1)
    prompts = torch.randint(0, 50257, (args.prompts, 64), device="cuda", generator=g)
    mask = torch.ones_like(prompts)

    def run(new):
        with torch.no_grad():
            return model.generate(input_ids=prompts, attention_mask=mask, do_sample=True,
                                  temperature=1.0, top_k=0, max_new_tokens=new,
                                  min_new_tokens=new, pad_token_id=0, use_cache=True)

    run(4)
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = run(args.new)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    generated = args.prompts * (out.shape[1] - 64)
    tokens_per_s = generated / seconds
    print(f"generate torch HF generate: {seconds:.2f} s, {tokens_per_s:.0f} tokens/s", flush=True)
    emit({"bench": "generate", "impl": "torch-hf", "prompts": args.prompts,
          "new_tokens": args.new, "tokens_per_s": round(tokens_per_s, 1)})


def rows(path):
    found = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith('{"bench"'):
                found.append(json.loads(line))
    return found


def compare(rlhf_path, torch_path):
    ours = {r["bench"]: r for r in rows(rlhf_path) if r.get("impl") == "rlhf"}
    theirs = rows(torch_path)
    print("| measurement | rlhf | reference | rlhf / reference |")
    print("|---|---|---|---|")
    if "train" in ours:
        mine = ours["train"]["tokens_per_s"]
        for r in theirs:
            if r["bench"] == "train":
                print(f"| train tokens/s (B {r['batch']} x T {r['seq']}) | {mine:.0f} | "
                      f"{r['impl']} {r['tokens_per_s']:.0f} | {mine / r['tokens_per_s']:.2f} (goal >= 1.0) |")
        print(f"| train tokens/s | {mine:.0f} | llm.c published {LLMC_H100_TOKENS_PER_S:.0f} | "
              f"{mine / LLMC_H100_TOKENS_PER_S:.2f} (goal >= 0.8) |")
        print(f"| train MFU | {100 * ours['train']['mfu']:.1f}% | | |")
    if "generate" in ours:
        mine = ours["generate"]["tokens_per_s"]
        for r in theirs:
            if r["bench"] == "generate":
                print(f"| generate tokens/s ({r['prompts']} x {r['new_tokens']}) | {mine:.0f} | "
                      f"{r['impl']} {r['tokens_per_s']:.0f} | {mine / r['tokens_per_s']:.2f} (goal >= 1.0) |")
    if "ppo" in ours:
        p = ours["ppo"]
        print(f"| PPO step ({p['episodes']} x {p['new_tokens']}) | {p['step_s']:.2f} s, generation "
              f"{100 * p['generation_share']:.0f}% | | goal: generation < 50% |")
    if "memory" in ours:
        m = ours["memory"]
        print(f"| activations (B {m['batch']} x T {m['seq']}) | {m['bytes'] / 2**20:.0f} MiB, "
              f"{m['bytes_recompute'] / 2**20:.0f} MiB recomputing | | |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new", type=int, default=256)
    parser.add_argument("--peak-tflops", type=float, default=989.4)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--compare", nargs=2, metavar=("RLHF", "TORCH"))
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return 0
    try:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as e:
        print(f"gpt_bench_torch: PyTorch or transformers missing ({e}); no reference rows")
        return 1
    if not torch.cuda.is_available():
        print("gpt_bench_torch: no CUDA device visible to PyTorch")
        return 1
    print(f"gpt_bench_torch on {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    status = 0
    train(args, torch, GPT2LMHeadModel, GPT2Config, compiled=False)
    generate(args, torch, GPT2LMHeadModel, GPT2Config)
    if not args.no_compile:
        try:
            train(args, torch, GPT2LMHeadModel, GPT2Config, compiled=True)
        except Exception as e:  # torch.compile needs a working Triton; eager stays the row
            print(f"train    torch-compile: failed ({type(e).__name__}: {e})", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
