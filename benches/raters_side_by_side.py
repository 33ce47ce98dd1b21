#!/usr/bin/env python3
"""Side-by-side timing of rlhf-raters against the Python libraries people use today, on the same
seeded data in one run (the issue's benchmark: 1M labels from 10k raters over 200k items with 5
classes; 100k comparisons among 200 items with 10% ties).

    python3 -m venv ~/.cache/venv-raters
    ~/.cache/venv-raters/bin/pip install krippendorff crowd-kit choix
    cargo build --release -p rlhf-raters --example raters_bench
    ~/.cache/venv-raters/bin/python benches/raters_side_by_side.py [--repeats 3] [--choix-refits 20]

Our side: `target/release/examples/raters_bench time DIR` (reads the same CSV files, times the
library calls only, median of repeats). Their side: the same files loaded with pandas; data
preparation is not timed, only the library calls:
- krippendorff.alpha(value_counts=...) at the four levels (its fastest input form);
- crowdkit DawidSkene(n_iter=100, tol=1e-5).fit_predict against ours to convergence (tol 1e-5
  per label), and the time per iteration of each (ours from a fixed 100-iteration run);
- choix.ilsr_pairwise to tol 1e-10 (ties as one win each way, wins doubled: the same likelihood up
  to a factor 2, hence the same MLE as ours with ties as half wins); 1,000 bootstrap refits are
  extrapolated from --choix-refits timed refits (stated in the output).
Prints a JSON record and a Markdown table (ours, theirs, ratio = theirs / ours).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "examples", "raters_bench")


def median_time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--choix-refits", type=int, default=20)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"missing {BIN}: run `cargo build --release -p rlhf-raters --example raters_bench`")
    import choix
    import krippendorff
    from crowdkit.aggregation import DawidSkene

    work = args.dir or tempfile.mkdtemp(prefix="raters-bench-")
    subprocess.run([BIN, "gen", work], check=True)
    ours = json.loads(subprocess.run([BIN, "time", work, str(args.repeats)], check=True, capture_output=True, text=True).stdout)

    labels = pd.read_csv(os.path.join(work, "labels.csv"), dtype={"item": str, "rater": str, "label": int})
    pairs = pd.read_csv(os.path.join(work, "pairs.csv"), dtype=str)

    # krippendorff: value counts (items x values), prepared untimed
    codes, _ = pd.factorize(labels["item"])
    vc = np.zeros((codes.max() + 1, 5))
    np.add.at(vc, (codes, labels["label"].to_numpy()), 1)
    levels = ["nominal", "ordinal", "interval", "ratio"]
    domain = np.arange(5, dtype=float)
    kd_ms, kd_vals = median_time(
        lambda: [krippendorff.alpha(value_counts=vc, value_domain=domain, level_of_measurement=l) for l in levels],
        args.repeats,
    )
    alpha_diff = max(abs(a - b) for a, (_, b) in zip(kd_vals, ours["alpha"]))

    # crowd-kit Dawid-Skene
    df = labels.rename(columns={"item": "task", "rater": "worker"})
    t = time.perf_counter()
    ds = DawidSkene(n_iter=100, tol=1e-5)
    ds.fit_predict(df)
    ck_ms = (time.perf_counter() - t) * 1e3
    ck_iters = len(getattr(ds, "loss_history_", [])) or None

    # choix Bradley-Terry
    items = sorted(set(pairs["left"]) | set(pairs["right"]), key=lambda s: int(s[1:]))
    index = {name: i for i, name in enumerate(items)}
    data = []
    for l, r, w in zip(pairs["left"], pairs["right"], pairs["winner"]):
        a, b = index[l], index[r]
        if w == "left":
            data += [(a, b), (a, b)]
        elif w == "right":
            data += [(b, a), (b, a)]
        else:
            data += [(a, b), (b, a)]
    n = len(items)
    bt_ms, theta = median_time(lambda: choix.ilsr_pairwise(n, data, alpha=0.0, tol=1e-10, max_iter=1000), args.repeats)
    theta = np.asarray(theta) - np.mean(theta)
    bt_diff = float(np.max(np.abs(theta[:5] - np.asarray(ours["bt_theta_m0_to_m4"]))))
    rng = np.random.default_rng(1)
    arr = np.asarray(data)
    m = len(pairs)
    t = time.perf_counter()
    for _ in range(args.choix_refits):
        pick = rng.integers(0, m, size=m)
        rows = np.concatenate([arr[2 * pick], arr[2 * pick + 1]])
        choix.ilsr_pairwise(n, rows, alpha=0.0, tol=1e-10, max_iter=1000)
    refit_ms = (time.perf_counter() - t) * 1e3 / args.choix_refits
    boot_extrapolated = refit_ms * 1000

    rows = [
        ("Krippendorff alpha, 4 levels (1M labels)", ours["alpha_all_levels_ms"], kd_ms, "krippendorff 0.9 (value_counts)"),
        (f"Dawid-Skene to convergence ({ours['dawid_skene_iterations']} it, 1M labels)", ours["dawid_skene_ms"], ck_ms,
         f"crowd-kit DawidSkene ({ck_iters} it)"),
        ("Dawid-Skene, per iteration (1M labels)", ours["dawid_skene_100_iterations_ms"] / 100, ck_ms / ck_iters,
         "crowd-kit DawidSkene, per iteration"),
        ("Bradley-Terry fit (100k comparisons)", ours["bt_fit_ms"], bt_ms, "choix ilsr_pairwise"),
        ("1,000 Bradley-Terry bootstrap refits", ours["bt_bootstrap_1000_ms"], boot_extrapolated,
         f"choix, {args.choix_refits} refits x {1000 // args.choix_refits}"),
    ]
    record = {
        "ours": ours, "krippendorff_ms": kd_ms, "krippendorff_alpha": kd_vals, "alpha_max_abs_diff_all_levels": alpha_diff,
        "crowdkit_ds_ms": ck_ms, "crowdkit_ds_iterations": ck_iters, "choix_fit_ms": bt_ms,
        "choix_theta_max_abs_diff_first5": bt_diff, "choix_refit_ms": refit_ms, "choix_bootstrap_1000_extrapolated_ms": boot_extrapolated,
    }
    print(json.dumps(record, indent=1))
    print("\n| task | ours (ms) | baseline | baseline (ms) | ratio |\n|---|---|---|---|---|")
    for name, a, b, who in rows:
        print(f"| {name} | {a:.1f} | {who} | {b:.1f} | {b / a:.1f}x |")


if __name__ == "__main__":
    main()
