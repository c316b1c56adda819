"""Paths mean what they mean to the caller; close() ends running queries with CoprocessDied."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from cryptcount import AsyncCoprocess, Coprocess, CoprocessDied, CryptCountError


@pytest.fixture
def two_dirs(tmp_path: Path) -> Iterator[Path]:
    """Two directories holding a file of the same name with different contents."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "diary.txt").write_bytes(b"cat cat cat")
    (tmp_path / "two" / "diary.txt").write_bytes(b"cat")
    (tmp_path / "two" / os.fsdecode(b"d\xff.txt")).write_bytes(b"cat cat")
    old = os.getcwd()
    os.chdir(tmp_path / "one")
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def test_relative_paths_follow_the_callers_cwd(binary: str, two_dirs: Path) -> None:
    # The coprocess starts in one/; the caller then moves to two/.
    with Coprocess(binary) as cc:
        assert [(r.path, r.counts) for r in cc.count(["diary.txt"], ["cat"])] == [("diary.txt", [3])]
        os.chdir(two_dirs / "two")
        paths = ["diary.txt", b"diary.txt", Path("diary.txt"), b"d\xff.txt", os.fsdecode(b"d\xff.txt"), "./diary.txt"]
        results = sorted(cc.count(paths, ["cat"]), key=lambda r: r.index)
        # Each result reports the path exactly as given (same object), counted in two/.
        assert [r.path for r in results] == paths
        assert all(r.path is p for r, p in zip(results, paths))
        assert [r.counts for r in results] == [[1], [1], [1], [2], [2], [1]]
        # An absolute path and an empty one are sent as they are.
        abs_path = str(two_dirs / "one" / "diary.txt")
        results = sorted(cc.count([abs_path, ""], ["cat"]), key=lambda r: r.index)
        assert results[0].counts == [3] and results[0].path == abs_path
        assert results[1].error is not None and results[1].error.code == "not_found"


def test_relative_paths_follow_the_callers_cwd_async(binary: str, two_dirs: Path) -> None:
    async def main() -> List[List[int]]:
        async with AsyncCoprocess(binary) as ac:
            os.chdir(two_dirs / "two")
            q = ac.count(["diary.txt", b"diary.txt"], ["cat"], ordered=True)
            return [r.counts async for r in q]

    assert asyncio.run(main()) == [[1], [1]]


def _many_files(tmp_path: Path, n: int = 300) -> List[Path]:
    files = []
    for i in range(n):
        p = tmp_path / f"f{i:03}.txt"
        p.write_bytes(os.urandom(100_000))
        files.append(p)
    return files


def test_close_makes_a_running_query_raise_coprocess_died(binary: str, tmp_path: Path) -> None:
    files = _many_files(tmp_path)
    cc = Coprocess(binary, workers=1)
    # Long enough to be running at close(): 300 files (30 MB) could all be counted, and their
    # `done` read during done.wait(), when the coprocess's reader got no CPU for a while (seen
    # under load); 12,000 files' results also outgrow the pipe and the coprocess's queues, so
    # it cannot finish while nobody reads.
    q = cc.count(files * 40, ["cat"], ordered=True)
    it = iter(q)
    next(it)  # running
    done = cc.count(files[:1], ["cat"])
    done.wait()  # finished before close: keeps its summary
    cc.close()
    for _ in range(2):  # every later call, not only the first
        with pytest.raises(CoprocessDied) as e:
            q.wait()
        assert "closed" in str(e.value)
        with pytest.raises(CoprocessDied):
            q.summary
    with pytest.raises(CoprocessDied):
        list(it)
    assert done.summary.files == 1
    with pytest.raises(CoprocessDied):
        cc.count(files[:1], ["cat"]).wait()


def test_close_makes_a_running_async_query_raise_coprocess_died(binary: str, tmp_path: Path) -> None:
    files = _many_files(tmp_path)

    async def main() -> None:
        ac = await AsyncCoprocess(binary, workers=1).start()
        q = ac.count(files * 40, ["cat"], ordered=True)  # still running at close(), as above
        it = q.__aiter__()
        await it.__anext__()  # running
        await ac.close()
        for _ in range(2):
            with pytest.raises(CoprocessDied):
                await q.wait()
        with pytest.raises(CoprocessDied):
            [r async for r in it]

    asyncio.run(main())


def test_query_close_wakes_a_wait_in_another_thread(binary: str, tmp_path: Path) -> None:
    """q.close() from one thread while another blocks in q.wait(): the waiter returns at once
    with "closed before it finished" (it used to wait forever: the closed query's responses no
    longer reached it, or, woken after the cancel was sent, it could read the cancel's answer
    and block in the next read: one round in eight or so hung, hence the rounds)."""
    files = _many_files(tmp_path, 40) * 2000  # about 0.7 s of work: still running at 50 ms
    with Coprocess(binary, workers=1, args=("--cache-mb", "0")) as cc:
        for _ in range(12):
            q = cc.count(files, ["cat"])
            out: List[object] = []

            def wait() -> None:
                try:
                    out.append(q.wait())
                except BaseException as e:  # noqa: BLE001 - recorded for the assertion
                    out.append(e)

            t = threading.Thread(target=wait, daemon=True)
            t.start()
            time.sleep(0.05)
            q.close()
            t.join(10)
            assert not t.is_alive(), "wait() still blocked after close()"
            assert isinstance(out[0], CryptCountError) and "closed" in str(out[0])
        assert cc.count(files[:1], ["cat"]).wait().files == 1  # the coprocess is fine


def test_async_query_close_or_break_wakes_a_waiting_task(binary: str, tmp_path: Path) -> None:
    """The asyncio query likewise: close() from another task, and `break` out of `async for`
    followed by `await q.wait()` (the generator's cleanup closes the query a moment later), end
    the wait (a summary if the query finished first) instead of hanging."""
    files = _many_files(tmp_path, 40) * 2000  # about 0.7 s of work: still running at 50 ms

    async def main() -> None:
        async with AsyncCoprocess(binary, workers=1, args=("--cache-mb", "0")) as ac:
            q = ac.count(files, ["cat"])
            w = asyncio.create_task(q.wait())
            await asyncio.sleep(0.05)
            q.close()
            with pytest.raises(CryptCountError, match="closed"):
                await asyncio.wait_for(w, 10)
            for _ in range(3):
                q = ac.count(files, ["cat"])
                async for _r in q:
                    break
                try:
                    s = await asyncio.wait_for(q.wait(), 10)
                except CryptCountError as e:
                    assert "closed" in str(e)
                else:
                    assert s.files + s.skipped == len(files)
            assert (await ac.count(files[:1], ["cat"]).wait()).files == 1

    asyncio.run(main())


def test_async_coprocess_alive_closed_and_forget_timeout(binary: str) -> None:
    """As on Coprocess: `alive`, `closed`, and forget's `timeout` (TimeoutError when the answer
    does not come in time: here the coprocess is stopped)."""

    async def main() -> None:
        ac = AsyncCoprocess(binary)
        assert not ac.alive and not ac.closed  # not started
        await ac.start()
        assert ac.alive and not ac.closed
        await ac.unlock("k", cipher="biographer", secret="pw")
        await ac.forget("k", timeout=5)
        os.kill(ac.pid, signal.SIGSTOP)
        try:
            with pytest.raises(TimeoutError):
                await ac.forget("k", timeout=0.2)
        finally:
            os.kill(ac.pid, signal.SIGCONT)
        assert (await ac.stats())["workers"] >= 1  # the late answer was dropped, the session goes on
        await ac.close()
        assert ac.closed and not ac.alive

    asyncio.run(main())
