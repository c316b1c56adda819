"""The coprocess dying: every waiting call raises CoprocessDied promptly; nothing hangs."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable, List

import pytest

from _cc_support import freeze
from cryptcount import AsyncCoprocess, Coprocess, CoprocessDied


def test_kill_wakes_every_waiting_call(binary: str, big_corpus: List[Path]) -> None:
    cc = Coprocess(binary)
    kill = freeze(cc.pid)  # stopped: every call below waits
    calls: List[Callable[[], object]] = [
        cc.stats,
        cc.hello,
        lambda: cc.unlock("k", cipher="biographer", secret="pw"),
        lambda: list(cc.count(big_corpus[:20], terms=["rain"], cipher="biographer", secret="pw")),
        lambda: cc.count(big_corpus[:20], terms=["rain"], cipher="biographer", secret="pw").summary,
    ]
    raised: List[float] = []
    other: List[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except CoprocessDied:
            raised.append(time.monotonic())
        except BaseException as exc:
            other.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    time.sleep(0.3)  # let them block
    killed_at = time.monotonic()
    kill()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads), "a call hung after the coprocess died"
    assert other == []
    assert len(raised) == len(calls)
    assert max(raised) - killed_at < 1.0
    with pytest.raises(CoprocessDied) as e:
        cc.stats()  # later calls fail at once
    assert e.value.returncode == -signal.SIGKILL
    assert "exit status" in str(e.value)
    with pytest.raises(CoprocessDied):
        cc.count(big_corpus[:1], terms=["x"])
    cc.close()  # does not hang either


def test_kill_during_iteration(binary: str, big_corpus: List[Path]) -> None:
    with Coprocess(binary, workers=1, args=("--cache-mb", "0")) as cc:
        q = cc.count(big_corpus, terms=["rain"], cipher="biographer", secret="pw")
        seen = 0
        with pytest.raises(CoprocessDied):
            for _ in q:
                seen += 1
                if seen == 1:
                    os.kill(cc.pid, signal.SIGKILL)
        assert seen < len(big_corpus)
        assert q.done


def test_startup_failure_reports_stderr(binary: str) -> None:
    with pytest.raises(CoprocessDied) as e:
        Coprocess(binary, args=("--no-such-option",))
    assert e.value.returncode not in (None, 0)
    assert e.value.stderr_tail.strip() != ""


def test_asyncio_waiters_see_the_death(binary: str, big_corpus: List[Path]) -> None:
    async def main() -> None:
        async with AsyncCoprocess(binary) as ac:
            kill = freeze(ac.pid)

            async def drain() -> None:
                async for _ in ac.count(big_corpus[:10], terms=["rain"], cipher="biographer", secret="pw"):
                    pass

            tasks = [asyncio.ensure_future(c) for c in (ac.stats(), ac.hello(), drain())]
            await asyncio.sleep(0.3)
            killed_at = time.monotonic()
            kill()
            results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=10)
            assert all(isinstance(r, CoprocessDied) for r in results), results
            assert time.monotonic() - killed_at < 1.0
            with pytest.raises(CoprocessDied):
                await ac.stats()

    asyncio.run(main())


def test_close_of_a_stopped_coprocess_keeps_to_its_timeout(binary: str) -> None:
    """``close(timeout=T)`` bounds the whole wait: a coprocess that does not answer (stopped) is
    terminated after T, killed half a second later (it took about 3T: the shutdown, the exit and
    the terminate each waited up to T)."""
    cc = Coprocess(binary)
    freeze(cc.pid)
    started = time.monotonic()
    cc.close(timeout=1.0)
    took = time.monotonic() - started
    assert cc.returncode is not None
    assert took < 2.5, took  # about 1.5 s; 3 s or more before


def test_a_binary_that_never_answers_times_out_at_its_start_timeout(tmp_path: Path) -> None:
    mute = tmp_path / "mute"
    mute.write_text("#!/bin/sh\nexec sleep 600\n")
    mute.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        Coprocess(str(mute), start_timeout=1.0)
    took = time.monotonic() - started
    assert took < 2.5, took  # about 1 s (the start timeout), then terminated at once; 3 s before
