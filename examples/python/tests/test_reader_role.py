"""The reader role: a blocking caller reads the coprocess's output itself when no other thread is
(no hand-off for a lone request); under concurrency, cancellation, timeouts and death every
caller is still served exactly its own responses, and nothing hangs."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import cryptcount._session as _session
from _cc_support import wait_idle
from cryptcount import AsyncCoprocess, Coprocess, CoprocessDied

TERMS = ["rain", "sun", "the"]


def expected(data: bytes, terms: List[str]) -> List[int]:
    return [data.count(t.encode()) for t in terms]


# Every test runs with the caller's and the coprocess's spinning off, at its default, and so long
# (20 ms) that nearly every wait on either side is answered, dies or times out while it spins.
# (The caller's long spin is not cut short on a busy or shared CPU here: it is always exercised.)
@pytest.fixture(params=[0, None, 20000], ids=["no-spin", "default-spin", "spin-20ms"])
def spin_us(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    if request.param == 20000:
        monkeypatch.setattr(_session, "_BUSY_SHARE", float("inf"))
        monkeypatch.setattr(_session, "_SHARED_CPU_ROUND", float("inf"))
    return request.param


@pytest.fixture
def decoded_on(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """The name of the thread that decoded each response frame, in order."""
    names: List[str] = []
    unpack = _session.unpack

    def recording(payload: bytes) -> Any:
        names.append(threading.current_thread().name)
        return unpack(payload)

    monkeypatch.setattr(_session, "unpack", recording)
    return names


def test_a_lone_request_is_read_on_the_callers_thread(
    binary: str, plain_corpus: Dict[Path, bytes], decoded_on: List[str], spin_us: Any
) -> None:
    paths = list(plain_corpus)
    with Coprocess(binary, spin_us=spin_us) as cc:
        decoded_on.clear()
        results = list(cc.count(paths, terms=TERMS))
        cc.stats()
        me = threading.current_thread().name
        assert len(decoded_on) == len(paths) + 2  # the file results, done, stats
        assert set(decoded_on) == {me}, decoded_on
        assert {r.index: r.counts for r in results} == {
            i: expected(plain_corpus[p], TERMS) for i, p in enumerate(paths)
        }

    # Nobody waits on an asyncio request: the background thread reads its responses.
    async def main() -> str:
        async with AsyncCoprocess(binary, spin_us=spin_us) as acc:
            decoded_on.clear()
            await acc.stats()
            return f"cryptcount-reader-{acc.pid}"

    reader = asyncio.run(main())
    assert decoded_on[:1] == [reader], decoded_on


def test_threads_interleave_tiny_and_streaming_queries(
    binary: str, plain_corpus: Dict[Path, bytes], tmp_path: Path, spin_us: Any
) -> None:
    with Coprocess(binary, spin_us=spin_us) as cc:
        _interleave(cc, plain_corpus)


def _interleave(cc: Coprocess, plain_corpus: Dict[Path, bytes]) -> None:
    paths = list(plain_corpus)
    many = paths * 40  # 800 results, read slowly by one thread while others send tiny requests
    failures: List[str] = []
    done = threading.Event()

    def streaming() -> None:
        try:
            got = 0
            for r in cc.count(many, terms=TERMS):
                if r.counts != expected(plain_corpus[many[r.index]], TERMS):
                    failures.append(f"streaming: file {r.index} counted {r.counts}")
                got += 1
                if got % 50 == 0:
                    time.sleep(0.005)  # let the others take the reader role meanwhile
            if got != len(many):
                failures.append(f"streaming: {got} results for {len(many)} files")
        except Exception as exc:
            failures.append(f"streaming: {exc!r}")
        finally:
            done.set()

    def tiny(n: int) -> None:
        rng = random.Random(n)
        try:
            while not done.is_set():
                p = rng.choice(paths)
                (r,) = cc.count([p], terms=TERMS)
                if r.counts != expected(plain_corpus[p], TERMS) or r.path != p:
                    failures.append(f"tiny {n}: {r}")
                cc.stats()
        except Exception as exc:
            failures.append(f"tiny {n}: {exc!r}")

    threads = [threading.Thread(target=streaming)] + [threading.Thread(target=tiny, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert failures == []
    assert cc._session.in_flight() == 0


def test_a_query_cancelled_mid_stream_while_other_threads_read(
    binary: str, big_corpus: List[Path], plain_corpus: Dict[Path, bytes], spin_us: Any
) -> None:
    paths = list(plain_corpus)
    failures: List[str] = []
    with Coprocess(binary, args=("--cache-mb", "0"), spin_us=spin_us) as cc:
        stop = threading.Event()

        def tiny() -> None:
            try:
                while not stop.is_set():
                    p = random.choice(paths)
                    (r,) = cc.count([p], terms=TERMS)
                    if r.counts != expected(plain_corpus[p], TERMS):
                        failures.append(f"tiny: {r}")
            except Exception as exc:
                failures.append(f"tiny: {exc!r}")

        others = [threading.Thread(target=tiny) for _ in range(2)]
        for t in others:
            t.start()
        q = cc.count(big_corpus, terms=["rain"], cipher="biographer", secret="pw")
        seen = 0
        for _ in q:
            seen += 1
            if seen == 5:
                q.cancel()
        s = q.summary
        assert s.cancelled and s.files == seen and s.files + s.skipped == len(big_corpus) and s.skipped > 0
        # Dropped mid-stream: break out of a second query; its remaining responses are drained.
        q2 = cc.count(big_corpus, terms=["rain"], cipher="biographer", secret="pw")
        for _ in q2:
            break
        assert q2.done
        stop.set()
        for t in others:
            t.join(60)
        assert not any(t.is_alive() for t in others)
        assert failures == []
        wait_idle(cc)
        deadline = time.monotonic() + 10
        while cc._session.in_flight() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cc._session.in_flight() == 0
        (r,) = cc.count(paths[:1], terms=TERMS)
        assert r.counts == expected(plain_corpus[paths[0]], TERMS)


def test_a_call_that_times_out_while_reading_leaves_the_session_usable(
    binary: str, tmp_path: Path, spin_us: Any
) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(b"rain rain sun\n")
    with Coprocess(binary, spin_us=spin_us) as cc:
        cc.unlock("k", cipher="biographer", secret="pw")
        os.kill(cc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError):
                cc.forget("k", timeout=0.3)  # this thread holds the reader role, waiting in select
            assert 0.25 < time.monotonic() - t0 < 5
        finally:
            os.kill(cc.pid, signal.SIGCONT)
        # The late answer to the forget is dropped, the next request gets its own.
        (r,) = cc.count([p], terms=["rain", "sun"])
        assert r.counts == [2, 1]
        assert cc.alive


def test_a_death_while_idle_is_noticed_without_a_request(binary: str, spin_us: Any) -> None:
    cc = Coprocess(binary, spin_us=spin_us)
    try:
        os.kill(cc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not cc._session.dead and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cc._session.dead and not cc.alive
        assert cc.returncode == -signal.SIGKILL
        with pytest.raises(CoprocessDied):
            cc.stats()
    finally:
        cc.close()


def test_a_death_mid_stream_reaches_the_reader_and_every_waiter(
    binary: str, big_corpus: List[Path], spin_us: Any
) -> None:
    cc = Coprocess(binary, workers=1, args=("--cache-mb", "0"), spin_us=spin_us)
    raised: List[str] = []
    other: List[str] = []
    started = threading.Barrier(4)

    def run(name: str, call: Callable[[], object]) -> None:
        started.wait()
        try:
            call()
            other.append(f"{name}: returned")
        except CoprocessDied:
            raised.append(name)
        except BaseException as exc:
            other.append(f"{name}: {exc!r}")

    def stream() -> None:
        # Long enough that even a release build is still at work when it is killed (else the
        # stream ends normally), read as fast as it comes (the tiny loops' threads route its
        # results to it: a slow reader would have a backlog to go through first).
        for _ in cc.count(big_corpus * 4, terms=["rain"], cipher="biographer", secret="pw"):
            pass

    def tiny_loop() -> None:
        while True:
            cc.count(big_corpus[:1], terms=["rain"], cipher="biographer", secret="pw").wait()

    calls = [("stream", stream), ("tiny-1", tiny_loop), ("tiny-2", tiny_loop)]
    threads = [threading.Thread(target=run, args=c) for c in calls]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.5)  # a few hundred results streamed, tiny requests in between
    killed_at = time.monotonic()
    os.kill(cc.pid, signal.SIGKILL)
    for t in threads:
        t.join(10)
    try:
        assert not any(t.is_alive() for t in threads), "a caller hung after the coprocess died"
        assert other == []
        assert sorted(raised) == ["stream", "tiny-1", "tiny-2"]
        assert time.monotonic() - killed_at < 5
        assert not cc.alive
    finally:
        cc.close()
