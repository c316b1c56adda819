"""One coprocess shared by many threads and by many asyncio tasks."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path
from typing import Dict, List

from _cc_support import wait_idle
from cryptcount import AsyncCoprocess, Coprocess, RequestError, biographer

TERMS = ["rain", "sun", "the", "a", "river", "night"]


def expected(data: bytes, terms: List[str]) -> List[int]:
    return [data.count(t.encode()) for t in terms]


def test_many_threads_share_one_coprocess(cc: Coprocess, plain_corpus: Dict[Path, bytes], tmp_path: Path) -> None:
    paths = list(plain_corpus)
    failures: List[str] = []

    def worker(n: int) -> None:
        rng = random.Random(n)
        try:
            secret = f"pw-{n}"
            bio = tmp_path / f"thread-{n}.bio"
            bio.write_bytes(biographer.encrypt(b"rain " * n, secret))
            cc.unlock(f"k{n}", cipher="biographer", secret=secret)
            for _ in range(25):
                subset = rng.sample(paths, rng.randint(0, len(paths)))
                terms = rng.sample(TERMS, rng.randint(1, 3))
                got = {r.index: r.counts for r in cc.count(subset, terms=terms)}
                want = {i: expected(plain_corpus[p], terms) for i, p in enumerate(subset)}
                if got != want:
                    failures.append(f"thread {n}: {got} != {want}")
                (r,) = cc.count([bio], terms=["rain"], key=f"k{n}")
                if r.counts != [n]:
                    failures.append(f"thread {n}: key k{n} counted {r.counts}")
                cc.stats()
            cc.forget(f"k{n}")
        except Exception as exc:  # report, don't lose it in the thread
            failures.append(f"thread {n}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert failures == []


def test_asyncio_tasks_share_one_coprocess(binary: str, plain_corpus: Dict[Path, bytes]) -> None:
    paths = list(plain_corpus)

    async def one(ac: AsyncCoprocess, n: int) -> None:
        rng = random.Random(n)
        subset = rng.sample(paths, rng.randint(1, len(paths)))
        terms = rng.sample(TERMS, 2)
        q = ac.count(subset, terms=terms, words=n % 2 == 0)
        got = {r.index: r.counts async for r in q}
        assert got == {i: expected(plain_corpus[p], terms) for i, p in enumerate(subset)}
        s = await q.wait()
        assert s.files == len(subset) and q.summary == s
        assert (await ac.stats())["workers"] >= 1

    async def main() -> None:
        async with AsyncCoprocess(binary) as ac:
            assert (await ac.hello())["protocol"] == 1
            await asyncio.gather(*(one(ac, n) for n in range(40)))
            await ac.unlock("d", cipher="biographer", secret="x")
            await ac.forget("d")
            try:
                await ac.forget("d")
            except RequestError as e:
                assert e.code == "unknown_key"
            else:
                raise AssertionError("forget of an unknown key succeeded")
            q = ac.count(paths, terms=[""])
            try:
                async for _ in q:
                    pass
            except RequestError as e:
                assert e.code == "bad_request"
            else:
                raise AssertionError("an empty term was accepted")
        assert ac.returncode == 0

    asyncio.run(main())


def test_asyncio_break_and_task_cancel_cancel_the_query(binary: str, big_corpus: List[Path]) -> None:
    # The coprocess (a release build) must still be at work when the cancel comes: the
    # background thread reads an async query's results as they come (no pipe back-pressure).
    files = big_corpus

    async def main() -> None:
        async with AsyncCoprocess(binary, workers=1, args=("--cache-mb", "0")) as ac:
            loop = asyncio.get_running_loop()

            async def processed_since(before: int) -> int:
                stats = await loop.run_in_executor(None, wait_idle, ac.core)
                return int(stats["files"]) - before  # type: ignore[call-overload]

            before = int((await ac.stats())["files"])
            q = ac.count(files, terms=["rain"], cipher="biographer", secret="pw")
            async for _ in q:
                break
            for _ in range(20):  # the loop finalizes the abandoned async generator soon after
                if q.done:
                    break
                await asyncio.sleep(0)
            assert q.done
            assert await processed_since(before) < len(files)

            async def reader() -> None:
                async for _ in ac.count(files, terms=["rain"], cipher="biographer", secret="pw"):
                    await asyncio.sleep(0.01)

            before = int((await ac.stats())["files"])
            task = asyncio.create_task(reader())
            await asyncio.sleep(0.05)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            assert await processed_since(before) < len(files)

    asyncio.run(main())


def _many_files(tmp_path: Path, n: int = 3000) -> List[Path]:
    paths = []
    for i in range(n):
        p = tmp_path / f"many-{i:05d}.txt"
        p.write_bytes(b"rain on the river " * (1 + i % 5))
        paths.append(p)
    return paths


def test_threads_reading_one_query_all_return(cc: Coprocess, tmp_path: Path) -> None:
    """Several threads on one query (iterating it, waiting on it) all return, with every result
    read once: two receive steps at a time would both wait for the last response, and the one
    that did not get it would wait forever (the program could not even exit)."""
    paths = _many_files(tmp_path)
    want = sum(1 + i % 5 for i in range(len(paths)))
    for round_ in range(4):
        q = cc.count(paths, ["rain"])
        seen: List[int] = []
        summaries: List[int] = []
        errors: List[BaseException] = []

        def iterate() -> None:
            try:
                seen.extend(r.index for r in q)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        def wait() -> None:
            try:
                summaries.append(q.wait().counts[0])
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=t, daemon=True) for t in ([iterate] if round_ % 2 else []) + [wait] * 3]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), f"round {round_}: a reader never returned"
        assert errors == []
        assert summaries == [want] * 3
        rest = [r.index for r in q]  # what the iterating thread did not take
        assert sorted(seen + rest) == list(range(len(paths)))
    assert cc.stats()["in_flight"] == 0


def test_a_loop_over_a_query_closed_elsewhere_raises(cc: Coprocess, big_corpus: List[Path]) -> None:
    """A query closed by another thread ends a loop over it with an error, as `wait()` does, not
    as if every result had come; so does iterating a query that was closed."""
    import pytest

    from cryptcount import CryptCountError

    q = cc.count(big_corpus, ["rain"], cipher="biographer", secret="pw")
    got: List[int] = []
    # Closed as soon as a result has come (a timer could fire after a fast build has finished).
    closer = threading.Thread(target=q.close)
    with pytest.raises(CryptCountError, match="closed before it finished"):
        for r in q:
            got.append(r.index)
            if len(got) == 1:
                closer.start()
    closer.join()
    assert len(got) < len(big_corpus)
    with pytest.raises(CryptCountError, match="closed before it finished"):
        list(q)
    finished = cc.count(big_corpus[:3], ["rain"], cipher="biographer", secret="pw")
    assert len(list(finished)) == 3 and list(finished) == []  # a finished query: nothing more, no error


def test_tasks_awaiting_one_query_all_return(binary: str, tmp_path: Path) -> None:
    paths = _many_files(tmp_path, 1500)
    want = sum(1 + i % 5 for i in range(len(paths)))

    async def main() -> None:
        async with AsyncCoprocess(binary) as ac:
            for round_ in range(4):
                q = ac.count(paths, ["rain"])
                seen: List[int] = []

                async def iterate() -> None:
                    seen.extend([r.index async for r in q])

                async def wait() -> int:
                    return (await q.wait()).counts[0]

                jobs = ([iterate()] if round_ % 2 else []) + [wait(), wait(), wait()]
                done = await asyncio.wait_for(asyncio.gather(*jobs), 60)
                assert [d for d in done if d is not None] == [want] * 3
                rest = [r.index async for r in q]
                assert sorted(seen + rest) == list(range(len(paths)))

    asyncio.run(main())
