"""Hugging Face `tokenizers` side of the tokenizer benchmark (run by hand, never by CI).

1. Loads the tokenizer.json that `cargo bench -p rlhf-data --bench tokenizer` wrote and checks
   that it encodes every corpus document to the same ids as ours (and decodes back).
2. Times, on one thread, the same work as the Rust bench: encoding the corpus, and training a
   byte-level BPE of vocabulary 1024 (min_frequency 2) on it. Medians of repeated runs.

Setup: python3 -m venv ~/.cache/venv-hftok && ~/.cache/venv-hftok/bin/pip install tokenizers
Run:   RAYON_NUM_THREADS=1 ~/.cache/venv-hftok/bin/python crates/rlhf-data/benches/hf_tokenizers_peer.py
"""

import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

bench_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(), "rlhf-data-tokenizer-bench")
tok = Tokenizer.from_file(os.path.join(bench_dir, "tokenizer.json"))
with open(os.path.join(bench_dir, "corpus.jsonl")) as f:
    texts = [json.loads(line) for line in f]
with open(os.path.join(bench_dir, "ids.jsonl")) as f:
    ours = [json.loads(line) for line in f]

mismatches = 0
for text, ids in zip(texts, ours):
    theirs = tok.encode(text, add_special_tokens=False).ids
    if theirs != ids:
        mismatches += 1
        if mismatches <= 3:
            print("MISMATCH", repr(text[:80]), ids[:12], theirs[:12])
    if tok.decode(theirs, skip_special_tokens=False) != text:
        mismatches += 1
with open(os.path.join(bench_dir, "edge.jsonl")) as f:
    edge = [json.loads(line) for line in f]
edge_ok = 0
for case in edge:
    theirs = tok.encode(case["text"], add_special_tokens=False).ids
    if theirs == case["ids"]:
        edge_ok += 1
    else:
        print("EDGE MISMATCH", repr(case["text"]), case["ids"], theirs)
print(f"edge cases: {edge_ok}/{len(edge)} identical")
print(f"parity: {len(texts) - mismatches}/{len(texts)} documents identical "
      f"(vocab {tok.get_vocab_size()}, eos {tok.token_to_id('<|endoftext|>')}, pad {tok.token_to_id('<|pad|>')})")

n_bytes = sum(len(t.encode()) for t in texts)


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def encode_all():
    for text in texts:
        tok.encode(text, add_special_tokens=False)


def encode_batch():
    tok.encode_batch(texts, add_special_tokens=False)


def train():
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, min_frequency=2, special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t.train_from_iterator(texts, trainer=trainer)


for name, fn, repeats in [("encode (loop)", encode_all, 10), ("encode_batch", encode_batch, 10),
                          ("train vocab 1024", train, 5)]:
    s = median_seconds(fn, repeats)
    print(f"hf tokenizers {name}: median {s * 1e3:.2f} ms ({n_bytes / s / 1e6:.2f} MB/s)")
