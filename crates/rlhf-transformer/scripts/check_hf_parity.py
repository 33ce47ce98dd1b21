#!/usr/bin/env python3
"""Checks rlhf-transformer's GPT-2 checkpoints against Hugging Face `transformers`, both ways.

1. transformers -> rlhf: a randomly initialised GPT2LMHeadModel is saved with `save_pretrained`
   (safetensors); the Rust side loads it and computes logits on a left-padded batch; they must
   match transformers' logits within 1e-4 relative (max |a-b| / max |b|).
2. rlhf -> transformers: the Rust side writes a random checkpoint; `from_pretrained` loads it and
   its logits must match the Rust side's.
3. A GPT2ForSequenceClassification (num_labels 1, `transformer.` prefix, `score.weight` without
   bias) loads as a model with one scalar head whose value at each sequence's last token matches
   transformers' pooled logit.

Run by hand (not in CI), with torch and transformers in a venv outside the repo:
    python3 -m venv ~/.cache/venv-torch && ~/.cache/venv-torch/bin/pip install torch transformers
    cargo build --release -p rlhf-transformer --example hf_parity
    ~/.cache/venv-torch/bin/python crates/rlhf-transformer/scripts/check_hf_parity.py
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.join(ROOT, "target", "release", "examples", "hf_parity")
TOL = 1e-4


def batch(vocab):
    rng = np.random.default_rng(0)
    lengths = [7, 4, 1]
    t = max(lengths)
    tokens = np.zeros((len(lengths), t), dtype=np.int64)
    mask = np.zeros((len(lengths), t), dtype=np.int64)
    for i, n in enumerate(lengths):  # left padding
        tokens[i, t - n:] = rng.integers(0, vocab, n)
        mask[i, t - n:] = 1
    return tokens, mask


def hf_logits(model, tokens, mask):
    position_ids = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(tokens),
            attention_mask=torch.tensor(mask),
            position_ids=torch.tensor(position_ids),
        )
    return out.logits.float().numpy()


def rust_logits(directory, tokens, mask, work):
    inp = os.path.join(work, "in.json")
    out = os.path.join(work, "out.json")
    with open(inp, "w") as f:
        json.dump({"tokens": tokens.tolist(), "mask": mask.tolist()}, f)
    subprocess.run([BIN, "logits", directory, inp, out], check=True)
    with open(out) as f:
        res = json.load(f)
    logits = np.array(res["logits"], dtype=np.float32).reshape(res["shape"])
    scalars = None if res.get("scalars") is None else np.array(res["scalars"], dtype=np.float32)
    return logits, scalars


def compare(name, ours, theirs, mask):
    real = mask.astype(bool)
    a, b = ours[real], theirs[real]  # padded rows are meaningless on both sides
    rel = float(np.abs(a - b).max() / np.abs(b).max())
    status = "ok" if rel <= TOL else "FAIL"
    print(f"{name}: max relative error {rel:.3e} over {a.size} logits ({status})")
    return rel <= TOL


def main():
    torch.manual_seed(0)
    ok = True
    with tempfile.TemporaryDirectory() as work:
        # 1. transformers -> rlhf
        config = GPT2Config(vocab_size=128, n_positions=64, n_embd=48, n_layer=3, n_head=4,
                            bos_token_id=0, eos_token_id=0)
        model = GPT2LMHeadModel(config).eval()
        with torch.no_grad():  # non-trivial LayerNorms and biases
            for name, p in model.named_parameters():
                if "ln_" in name or name.endswith(".bias"):
                    p.add_(0.1 * torch.randn_like(p))
        hf_dir = os.path.join(work, "hf")
        model.save_pretrained(hf_dir, safe_serialization=True)
        tokens, mask = batch(config.vocab_size)
        ok &= compare("transformers -> rlhf", rust_logits(hf_dir, tokens, mask, work)[0],
                      hf_logits(model, tokens, mask), mask)
        # 2. rlhf -> transformers
        ours_dir = os.path.join(work, "ours")
        subprocess.run([BIN, "init", ours_dir, "5"], check=True)
        loaded = GPT2LMHeadModel.from_pretrained(ours_dir).eval()
        tokens, mask = batch(loaded.config.vocab_size)
        ok &= compare("rlhf -> transformers", rust_logits(ours_dir, tokens, mask, work)[0],
                      hf_logits(loaded, tokens, mask), mask)
        # 3. a scalar head (reward-model layout)
        config.num_labels = 1
        config.pad_token_id = 0
        rm = GPT2ForSequenceClassification(config).eval()
        rm_dir = os.path.join(work, "rm")
        rm.save_pretrained(rm_dir, safe_serialization=True)
        tokens, mask = batch(config.vocab_size)
        tokens = np.where(mask == 1, np.maximum(tokens, 1), 0)  # pad id 0 only at padding
        position_ids = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)
        with torch.no_grad():
            theirs = rm(input_ids=torch.tensor(tokens), attention_mask=torch.tensor(mask),
                        position_ids=torch.tensor(position_ids)).logits.float().numpy()[:, 0]
        _, scalars = rust_logits(rm_dir, tokens, mask, work)
        ours = scalars.reshape(tokens.shape)[:, -1]  # left padding: the last token is real
        ok &= compare("transformers score head -> rlhf", ours[:, None], theirs[:, None],
                      np.ones((len(ours), 1)))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
