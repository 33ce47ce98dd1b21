#!/usr/bin/env python3
"""Python peer for the HH-RLHF reader bench (run by hand, never by CI).

Reads the file that `RLHF_BENCH_DUMP=FILE cargo bench -p rlhf-data --bench formats` writes and
does what a typical Python loader does per line: json.loads, then split each transcript at the last
"\\n\\nAssistant:" and the prompt into turns. Prints the median MB/s (MiB/s) of several passes.

Usage: python3 hh_read_python.py FILE [PASSES]
"""
import json
import statistics
import sys
import time


def read(path):
    turns = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            for key in ("chosen", "rejected"):
                prompt, _, response = record[key].rpartition("\n\nAssistant:")
                parts = [p for p in prompt.split("\n\n") if p]
                turns += len(parts) + (1 if response else 0)
    return turns


def main():
    path = sys.argv[1]
    passes = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    size = len(open(path, "rb").read())
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        read(path)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"python {sys.version.split()[0]} json+split: {size / median / 2**20:.1f} MiB/s (median of {passes}, {size} bytes)")


if __name__ == "__main__":
    main()
