"""Streaming, cancel, and every way of abandoning a query (close, break, del, with)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from _cc_support import wait_idle
from cryptcount import Coprocess, CryptCountError


@pytest.fixture
def slow_cc(binary: str) -> Iterator[Coprocess]:
    """One worker and no cache, so a big query is still running when we abandon it."""
    with Coprocess(binary, workers=1, args=("--cache-mb", "0")) as c:
        yield c


def start(cc: Coprocess, corpus: List[Path]):  # type: ignore[no-untyped-def]
    return cc.count(corpus, terms=["rain", "sun"], cipher="biographer", secret="pw")


def processed_since(cc: Coprocess, before: int) -> int:
    return int(wait_idle(cc)["files"]) - before  # type: ignore[call-overload]


def test_results_stream_while_the_query_runs(slow_cc: Coprocess, big_corpus: List[Path]) -> None:
    q = start(slow_cc, big_corpus)
    it = iter(q)
    first = next(it)
    assert first.ok and not q.done
    # The coprocess is still working on the rest while we hold the first result.
    assert int(slow_cc.stats()["in_flight"]) >= 1
    rest = list(it)
    assert 1 + len(rest) == len(big_corpus)
    assert sorted([first.index] + [r.index for r in rest]) == list(range(len(big_corpus)))
    assert not q.summary.cancelled and q.summary.files == len(big_corpus)


def test_cancel_still_drains_to_done(slow_cc: Coprocess, big_corpus: List[Path]) -> None:
    q = start(slow_cc, big_corpus)
    it = iter(q)
    next(it)
    q.cancel()
    q.cancel()  # idempotent
    rest = list(it)
    s = q.summary
    assert s.cancelled
    assert s.skipped > 0
    assert s.files == 1 + len(rest)
    assert s.files + s.skipped == len(big_corpus)


def test_close_cancels_in_the_coprocess(slow_cc: Coprocess, big_corpus: List[Path]) -> None:
    before = int(wait_idle(slow_cc)["files"])  # type: ignore[call-overload]
    q = start(slow_cc, big_corpus)
    it = iter(q)
    next(it)
    q.close()
    assert q.done
    # Its unread results are dropped: reading on says so (not an empty, "complete" list).
    for reader in (it, q):
        with pytest.raises(CryptCountError, match="closed before it finished"):
            list(reader)
    with pytest.raises(CryptCountError):
        q.summary
    assert processed_since(slow_cc, before) < len(big_corpus)


def test_break_cancels(slow_cc: Coprocess, big_corpus: List[Path]) -> None:
    before = int(wait_idle(slow_cc)["files"])  # type: ignore[call-overload]
    q = start(slow_cc, big_corpus)
    for _ in q:
        break
    assert q.done  # the loop's generator was closed, which closed the query
    assert processed_since(slow_cc, before) < len(big_corpus)

    before = int(wait_idle(slow_cc)["files"])  # type: ignore[call-overload]
    for _ in start(slow_cc, big_corpus):  # an unnamed query
        break
    assert processed_since(slow_cc, before) < len(big_corpus)


def test_dropping_the_query_cancels(slow_cc: Coprocess, big_corpus: List[Path]) -> None:
    before = int(wait_idle(slow_cc)["files"])  # type: ignore[call-overload]
    q = start(slow_cc, big_corpus)
    del q  # __del__
    assert processed_since(slow_cc, before) < len(big_corpus)


def test_with_block_cancels(slow_cc: Coprocess, big_corpus: List[Path]) -> None:
    before = int(wait_idle(slow_cc)["files"])  # type: ignore[call-overload]
    with start(slow_cc, big_corpus) as q:
        it = iter(q)
        next(it)
    assert q.done
    assert processed_since(slow_cc, before) < len(big_corpus)


def test_abandoned_queries_do_not_leak_into_later_ones(
    slow_cc: Coprocess, big_corpus: List[Path], plain_corpus: Dict[Path, bytes]
) -> None:
    for _ in range(3):
        for _ in start(slow_cc, big_corpus):
            break
    paths = list(plain_corpus)
    results = list(slow_cc.count(paths, terms=["rain"]))
    assert sorted(r.index for r in results) == list(range(len(paths)))
    assert all(r.counts == [plain_corpus[paths[r.index]].count(b"rain")] for r in results)


def test_progress_bar_with_tqdm(cc: Coprocess, plain_corpus: Dict[Path, bytes], capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("tqdm")
    q = cc.count(list(plain_corpus), terms=["rain"], progress=True)
    assert len(list(q)) == len(plain_corpus)
    err = capsys.readouterr().err
    assert f"{len(plain_corpus)}/{len(plain_corpus)}" in err


def test_progress_without_tqdm_prints_nothing(
    cc: Coprocess, plain_corpus: Dict[Path, bytes], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    q = cc.count(list(plain_corpus), terms=["rain"], progress=True)
    assert len(list(q)) == len(plain_corpus)
    assert capsys.readouterr().err == ""
