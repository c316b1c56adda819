#!/usr/bin/env python3
"""A query of many encrypted files on a Dask LocalCluster versus one local coprocess.

    export CRYPTCOUNT_BIN=$PWD/.build/release/cryptcount
    python3 examples/python/bench_dask.py            # -n 20000 --workers 2 --batch-size 500

Writes N biographer-encrypted diary entries (a few KB each, deterministic) to a temporary
folder, counts terms in all of them once through a local `Coprocess` and once with
`cryptcount.dask.count_on_cluster` on a `distributed.LocalCluster` (worker processes, one
thread each), checks that both give the same result for every file and the same summary, and
prints the times. The coprocesses run with `--cache-mb 0` (every query decrypts every file);
the local and the cluster query alternate for `--rounds` rounds, after a `sync` so that writing
the corpus does not slow the first one. Exit status 1 if any result differs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cryptcount import Coprocess, FileResult, biographer  # noqa: E402

WORDS = (
    "rain sun river morning letter garden train window coffee night story friend city road music "
    "winter summer quiet bright old new small house door light walk talk sea cat dog the a of and heron"
).split()
TERMS = ["rain", "heron", "the"]
PASSWORD = "bench-password"


def make_text(rng: random.Random, n_words: int) -> bytes:
    lines, line = [], []
    for _ in range(n_words):
        line.append(rng.choice(WORDS))
        if len(line) >= 12:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return ("\n".join(lines) + "\n").encode()


def write_corpus(root: Path, n: int) -> List[Path]:
    rng = random.Random(2026)
    texts = [make_text(rng, rng.randint(40, 400)) for _ in range(97)]
    paths = []
    for i in range(n):
        p = root / f"{i // 1000:03d}" / f"entry-{i:06d}.bio"
        if i % 1000 == 0:
            p.parent.mkdir()
        p.write_bytes(biographer.encrypt(texts[i % len(texts)], PASSWORD, rng=rng))
        paths.append(p)
    return paths


def key(r: FileResult) -> Any:
    return (r.counts, r.bytes, r.words, r.error.code if r.error else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20000, help="files (default 20000)")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="threads per Dask worker (default 1)")
    ap.add_argument("--batch-size", type=int, default=500, help="files per Dask task (default 500)")
    ap.add_argument("--rounds", type=int, default=2, help="local/cluster query pairs (default 2)")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args()

    try:
        from distributed import Client, LocalCluster

        from cryptcount.dask import count_on_cluster, register
    except ImportError as exc:
        print(f"needs dask and distributed: pip install './examples/python[dask]' ({exc})", file=sys.stderr)
        return 2

    serve_args = ("--cache-mb", "0")
    out: Dict[str, Any] = {"files": args.n, "workers": args.workers, "threads": args.threads,
                           "batch_size": args.batch_size, "cpus": os.cpu_count(), "local_s": [], "cluster_s": [],
                           "cluster_first_result_s": []}  # fmt: skip
    same = True
    with tempfile.TemporaryDirectory(prefix="cc-bench-dask-") as tmp:
        t = time.perf_counter()
        files = write_corpus(Path(tmp), args.n)
        out["write_s"] = time.perf_counter() - t
        out["corpus_mb"] = sum(p.stat().st_size for p in files) / 1e6
        os.sync()

        t = time.perf_counter()
        with LocalCluster(
            n_workers=args.workers, threads_per_worker=args.threads, processes=True, dashboard_address=":0"
        ) as cluster, Client(cluster) as client:
            register(client, args=serve_args)
            out["cluster_start_s"] = time.perf_counter() - t
            for _ in range(args.rounds):
                # Local: one coprocess, the whole list in one request.
                with Coprocess(args=serve_args) as cc:
                    out["local_coprocess_threads"] = cc.server_info.get("workers")
                    cc.unlock("diary", cipher="biographer", secret=PASSWORD)
                    t = time.perf_counter()
                    q = cc.count(files, TERMS, key="diary", words=True)
                    local = {r.index: r for r in q}
                    local_summary = q.summary
                    out["local_s"].append(time.perf_counter() - t)

                # Cluster: the same query, batch by batch on the workers' coprocesses.
                t = time.perf_counter()
                cq = count_on_cluster(
                    client, files, TERMS, cipher="biographer", secret=PASSWORD, batch_size=args.batch_size,
                    words=True,
                )  # fmt: skip
                first = None
                remote: Dict[int, FileResult] = {}
                for r in cq:
                    if first is None:
                        first = time.perf_counter() - t
                    remote[r.index] = r
                cluster_summary = cq.summary
                out["cluster_s"].append(time.perf_counter() - t)
                out["cluster_first_result_s"].append(first)

                same_files = len(remote) == len(local) == args.n and all(
                    key(remote[i]) == key(local[i]) for i in local
                )
                fields = ("files", "failed", "skipped", "counts", "words", "cancelled")
                same = same and same_files and all(
                    getattr(cluster_summary, f) == getattr(local_summary, f) for f in fields
                )
    out["same_results"] = same
    out["counts"] = local_summary.counts
    out["load_average"] = os.getloadavg()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        secs = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
        print(f"{args.n} files ({out['corpus_mb']:.0f} MB, biographer), terms {TERMS}, words=True; "
              f"{os.cpu_count()} CPUs, load average {out['load_average'][0]:.1f}")  # fmt: skip
        print(f"  local query (1 coprocess, {out['local_coprocess_threads']} threads): {secs(out['local_s'])} s")
        print(f"  cluster query ({args.workers} workers x {args.threads} thread, batches of {args.batch_size}): "
              f"{secs(out['cluster_s'])} s (first results after {secs(out['cluster_first_result_s'])} s; "
              f"cluster start {out['cluster_start_s']:.2f} s, not included)")  # fmt: skip
        print(f"  totals {local_summary.counts}, {local_summary.words} words; "
              f"same result for every file and the same summary in every round: {same}")  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
