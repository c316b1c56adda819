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


def test_compact_results_equal_maps(binary: str, tmp_path: Path) -> None:
    """The driver asks for compact results; each FileResult equals the one read from a map."""
    paths = _corpus(tmp_path, 60)
    with Coprocess(binary=binary) as cc:
        for options in ({}, {"words": True}, {"batch": 7, "words": True}, {"offsets": True}, {"cipher": "auto"}):
            maps = sorted(cc.count(paths, terms=["rain", "the"], compact=False, **options), key=lambda r: r.index)
            compact = sorted(cc.count(paths, terms=["rain", "the"], **options), key=lambda r: r.index)
            assert compact == maps, options
            assert len(compact) == len(paths) and compact[-1].error and compact[-1].error.code == "not_found"
            assert all(r.path is p for r, p in zip(compact, paths))
        assert sum(r.counts[1] for r in compact if r.ok) > 0


def test_the_driver_sends_compact_and_reads_bad_arrays_as_protocol_errors() -> None:
    import pytest

    from cryptcount._types import CountOptions, compact_file_result
    from cryptcount.errors import ProtocolError

    assert CountOptions().request(["/a"], ["x"])[0]["compact"] is True
    assert CountOptions(extra={"compact": False}).request(["/a"], ["x"])[0]["compact"] is False
    r = compact_file_result([1, [2, 3], 40, True, 9], ["a", "b"])
    assert (r.index, r.path, r.counts, r.bytes, r.cached, r.words, r.ok) == (1, "b", [2, 3], 40, True, 9, True)
    for bad in ([0, [1], 2], [0, [1], 2, False, 1, 1], [2, [1], 2, False], [-1, [1], 2, False], [0, 1, 2, False],
                [0, [1.5], 2, False], [0, [1], "2", False], [0, [1], 2, 0], [0, [1], 2, False, "w"]):
        with pytest.raises(ProtocolError):
            compact_file_result(bad, ["a", "b"])
