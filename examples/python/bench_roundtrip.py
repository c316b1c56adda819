#!/usr/bin/env python3
"""Round trip of a tiny request through the driver: one small file, one term.

Times ``list(cc.count([small_file], terms=["rain"]))`` (request sent, the one file result and the
``done`` read back and turned into Python objects) many times on one coprocess, after a warm-up,
and prints percentiles. For comparison it also times a count with no files (request
validation and ``done`` only) and ``stats()`` (answered without the worker pool).

    CRYPTCOUNT_BIN=.build/release/cryptcount python3 examples/python/bench_roundtrip.py [-n 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from cryptcount import Coprocess  # noqa: E402


def percentile(sorted_values: List[float], p: float) -> float:
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def measure(fn: Callable[[], object], n: int, warmup: int) -> Dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        samples.append((clock() - t0) / 1000)
    samples.sort()
    return {
        "n": n,
        "min_us": samples[0],
        "p50_us": percentile(samples, 50),
        "p90_us": percentile(samples, 90),
        "p99_us": percentile(samples, 99),
        "mean_us": statistics.fmean(samples),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20000, help="timed round trips (default 20000)")
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--workers", type=int, help="--workers for the coprocess")
    ap.add_argument("--binary", help="the cryptcount executable (default: $CRYPTCOUNT_BIN, else PATH)")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    opts = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp, Coprocess(opts.binary, workers=opts.workers) as cc:
        small = os.path.join(tmp, "small.txt")
        Path(small).write_bytes(b"It rained all morning; the rain stopped at noon.\n")
        expected = [2]

        def tiny_count() -> None:
            (r,) = cc.count([small], terms=["rain"])
            if r.counts != expected:
                raise SystemExit(f"wrong answer: {r}")

        def empty_count() -> None:
            cc.count([], terms=["rain"]).wait()

        results = {
            "count_1_file_1_term": measure(tiny_count, opts.n, opts.warmup),
            "count_0_files": measure(empty_count, opts.n, opts.warmup),
            "stats": measure(cc.stats, opts.n, opts.warmup),
        }
        info = cc.server_info
    meta = {
        "server_version": info.get("version"),
        "workers": info.get("workers"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
    }
    if opts.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return 0
    print(f"cryptcount {meta['server_version']} ({meta['workers']} workers), Python {meta['python']}, {meta['machine']}")
    print(f"{'request':<22}{'n':>7}{'min':>9}{'p50':>9}{'p90':>9}{'p99':>9}{'mean':>9}   (microseconds)")
    for name, r in results.items():
        print(
            f"{name:<22}{r['n']:>7}{r['min_us']:>9.1f}{r['p50_us']:>9.1f}{r['p90_us']:>9.1f}"
            f"{r['p99_us']:>9.1f}{r['mean_us']:>9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
