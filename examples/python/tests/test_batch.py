"""The opt-in `batch` request key: results grouped in `files` frames read like single ones."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from _cc_support import make_text
from cryptcount import AsyncCoprocess, Coprocess


def _corpus(tmp_path: Path, n: int = 120) -> list:
    rng = random.Random(5)
    paths = []
    for i in range(n):
        p = tmp_path / f"s{i}.txt"
        p.write_bytes(make_text(rng, 200))
        paths.append(p)
    paths.append(tmp_path / "missing.txt")
    return paths


def test_batched_results_match_single_frames(binary: str, tmp_path: Path) -> None:
    paths = _corpus(tmp_path)
    with Coprocess(binary=binary) as cc:
        single = {r.index: (r.counts, r.error and r.error.code) for r in cc.count(paths, terms=["rain", "the"])}
        q = cc.count(paths, terms=["rain", "the"], batch=16)
        batched = {r.index: (r.counts, r.error and r.error.code) for r in q}
        assert batched == single
        assert len(batched) == len(paths)
        assert q.summary.files == len(paths) and q.summary.failed == 1
        assert batched[len(paths) - 1][1] == "not_found"
        assert sum(c[0][0] for i, c in single.items() if c[0]) == q.summary.counts[0]


def test_batched_results_async(binary: str, tmp_path: Path) -> None:
    paths = _corpus(tmp_path, 40)

    async def main() -> int:
        async with AsyncCoprocess(binary=binary) as ac:
            n = 0
            async for _ in ac.count(paths, terms=["sun"], batch=8):
                n += 1
            return n

    assert asyncio.run(main()) == len(paths)
