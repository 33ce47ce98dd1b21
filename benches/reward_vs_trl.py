#!/usr/bin/env python3
"""rlhf-reward vs TRL's RewardTrainer: reward-model training pairs/s, side by side, in one run.

Same model shape (GPT-2: 4 layers, 4 heads, n_embd 128, max length 256, GPT-2 BPE vocabulary +
a PAD token = 50258, scalar reward head read at the last non-pad token; TRL:
GPT2ForSequenceClassification, num_labels 1), same pairs, same tokens, same batch (16 pairs =
32 rows, each padded to the batch's longest), Bradley-Terry loss, AdamW at 1e-4 without weight
decay, gradient clipping at 1, dropout off, same thread count.

Data: HH-RLHF JSONL (`chosen` / `rejected` transcripts), either a file (--data; repeated until
there are enough pairs) or generated here (deterministic HH-format dialogues; the project does
not need any data file to run this). The Rust side reads it through rlhf-reward's
PreferenceBuilder and GPT-2 tokenizer (prompt + response + EOS, cut to 256 keeping the EOS)
and writes the token rows; TRL trains on exactly those rows (pre-tokenised `chosen_ids` /
`rejected_ids` columns, so TRL skips its own tokenisation and its length filter drops nothing).

Timing: each side runs STEPS + 1 optimizer steps; the first is a warm-up. Ours: wall time of
each `RewardTrainer::train_step` (batch assembly, forward, loss, backward, clipping, AdamW).
TRL: time between consecutive `on_step_end` callbacks (data loading, collation, forward,
backward, clipping, optimizer and scheduler). pairs/s = pairs in timed steps / their seconds.
Runs alternate (ours, TRL, ours, TRL, ...); every run is printed with the load average.

    cargo build --release -p rlhf-reward --example bench_reward
    ~/.cache/venv-torch/bin/python benches/reward_vs_trl.py [--runs 3] [--steps 8] [--data FILE]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "examples", "bench_reward")
EOS, PAD = 50256, 50257

WORDS = (
    "the a of to and in is it you that for can I what how do be have not are with your this "
    "on my me would like help about know want make some people if they we there should could "
    "good time way think more when get one just so but or because their other really thing "
    "question answer kind sure sorry understand tell say also much very need find best work "
    "money friend house car food water school book story game music health doctor law police "
    "neighbor family child dog city country world history science computer phone internet "
    "recipe garden weather travel job company bank store movie song idea problem reason safe "
    "dangerous illegal harmful legal advice information example different important simple"
).split()


def sentence(rng, lo, hi):
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize() + rng.choice([".", "?", "!", "."])


def turn(rng, lo, hi):
    return " ".join(sentence(rng, 4, 16) for _ in range(rng.randint(lo, hi)))


def synthetic_hh(n, seed=0):
    """HH-RLHF-format pairs: 1-3 earlier exchanges, then two different final answers."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        prefix = ""
        for _ in range(rng.randint(0, 2)):
            prefix += f"\n\nHuman: {turn(rng, 1, 3)}\n\nAssistant: {turn(rng, 1, 4)}"
        prefix += f"\n\nHuman: {turn(rng, 1, 3)}\n\nAssistant:"
        chosen = prefix + " " + turn(rng, 1, 8)
        rejected = prefix + " " + turn(rng, 1, 8)
        lines.append(json.dumps({"chosen": chosen, "rejected": rejected}))
    return lines


def load_avg():
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def ours(data, tokens_out, steps, batch, max_len, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    args = [BIN, data, tokens_out, str(steps), str(batch), str(max_len)]
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def trl_run(tokens_file, steps, batch, max_len, threads):
    import torch
    from datasets import Dataset
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import (GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast,
                              TrainerCallback)
    from trl import RewardConfig, RewardTrainer

    torch.set_num_threads(threads)
    rows = [json.loads(line) for line in open(tokens_file)]
    dataset = Dataset.from_list(rows)
    # The rows are already token ids; the tokenizer only names EOS and PAD for TRL.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"<|endoftext|>": EOS, "<|pad|>": PAD},
                                             unk_token="<|endoftext|>")),
        eos_token="<|endoftext|>", pad_token="<|pad|>")
    config = GPT2Config(vocab_size=PAD + 1, n_positions=max_len, n_embd=128, n_layer=4, n_head=4,
                        num_labels=1, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=EOS,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    model = GPT2ForSequenceClassification(config)

    ends = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out_dir:
        args = RewardConfig(output_dir=out_dir, per_device_train_batch_size=batch,
                            max_steps=steps + 1, learning_rate=1e-4, weight_decay=0.0,
                            max_grad_norm=1.0, max_length=max_len, logging_steps=10**6,
                            save_strategy="no", report_to="none", disable_tqdm=True,
                            dataloader_num_workers=0, use_cpu=True, seed=0, bf16=False,
                            fp16=False)
        trainer = RewardTrainer(model=model, args=args, train_dataset=dataset,
                                processing_class=tokenizer, callbacks=[Clock()])
        assert len(trainer.train_dataset) == len(rows), "TRL dropped pairs"
        trainer.train()
    seconds = [b - a for a, b in zip(ends, ends[1:])]
    return {"pairs_per_s": batch * len(seconds) / sum(seconds), "step_seconds": seconds}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", help="HH-RLHF JSONL (default: generated pairs)")
    p.add_argument("--pairs", type=int, default=400, help="pairs to train on")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    if a.pairs < (a.steps + 1) * a.batch:
        sys.exit("--pairs must cover (steps + 1) x batch so no step is short")

    work = tempfile.mkdtemp(prefix="reward_vs_trl.")
    data = os.path.join(work, "pairs.jsonl")
    if a.data:
        source = [line for line in open(a.data) if line.strip()]
        lines = [source[i % len(source)].rstrip("\n") for i in range(a.pairs)]
    else:
        lines = synthetic_hh(a.pairs)
    with open(data, "w") as f:
        f.write("\n".join(lines) + "\n")
    tokens = os.path.join(work, "tokens.jsonl")

    import torch
    import trl
    print(f"torch {torch.__version__}, trl {trl.__version__}, {a.threads} threads, batch {a.batch} "
          f"pairs, max length {a.max_len}, data {a.data or 'generated HH-format'}")
    print("| run | load avg (1/5/15 min) | rlhf pairs/s | TRL pairs/s | ratio |")
    print("|---|---|---|---|---|")
    ratios, rs, ts = [], [], []
    for run in range(a.runs):
        before = load_avg()
        r = ours(data, tokens, a.steps, a.batch, a.max_len, a.threads)
        t = trl_run(tokens, a.steps, a.batch, a.max_len, a.threads)
        ratio = r["pairs_per_s"] / t["pairs_per_s"]
        ratios.append(ratio)
        rs.append(r["pairs_per_s"])
        ts.append(t["pairs_per_s"])
        print(f"| {run + 1} | {before} | {r['pairs_per_s']:.1f} | {t['pairs_per_s']:.1f} | "
              f"{ratio:.2f}x |", flush=True)
        if run == 0:
            print(f"(data: {r['pairs']} pairs, mean row {r['mean_row_tokens']:.0f} tokens, "
                  f"{r['truncated_rows']} rows cut to {a.max_len}, {r['skipped_invalid']} skipped)",
                  flush=True)
    print(f"| median | | {statistics.median(rs):.1f} | {statistics.median(ts):.1f} | "
          f"{statistics.median(ratios):.2f}x |")


if __name__ == "__main__":
    main()
