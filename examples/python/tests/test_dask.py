"""cryptcount.dask on a real distributed.LocalCluster: 2 worker processes, 1 thread each.

Every test compares against, or inspects, the real coprocesses (no mock). The cluster is shared
by the module; the test that kills a worker runs last (its nanny starts a replacement).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask/distributed not installed: pip install './examples/python[dask]'"
)
pytest.importorskip("dask", reason="dask not installed: pip install './examples/python[dask]'")

from _cc_support import make_text  # noqa: E402
from cryptcount import Coprocess, FileResult, RequestError, biographer  # noqa: E402
from cryptcount.dask import (  # noqa: E402
    PLUGIN_NAME,
    ClusterQuery,
    cluster_status,
    count_on_cluster,
    forget_on_cluster,
    register,
)

# Unique per run, so finding it in a log or a file cannot be a coincidence.
SECRET = f"pw-{uuid.uuid4().hex}"
TERMS = ["rain", "sun", "the", "Night"]
N_BIO = 240


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> List[Any]:
    """Biographer files under SECRET, plus a missing file and a directory (per-file errors);
    paths as str, Path and bytes."""
    root = tmp_path_factory.mktemp("dask-corpus")
    rng = random.Random(23)
    files: List[Any] = []
    for i in range(N_BIO):
        p = root / f"story-{i:03d}.bio"
        p.write_bytes(biographer.encrypt(make_text(rng, rng.randint(0, 400)), SECRET, rng=rng))
        files.append(p if i % 3 else (str(p) if i % 2 else os.fsencode(p)))
    files.insert(17, root / "missing.bio")
    (root / "a-directory").mkdir()
    files.insert(101, str(root / "a-directory"))
    return files


@pytest.fixture(scope="module")
def plain_files(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    root = tmp_path_factory.mktemp("dask-plain")
    rng = random.Random(5)
    paths = []
    for i in range(400):
        p = root / f"plain-{i:03d}.txt"
        p.write_bytes(make_text(rng, 300))
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def client(binary: str) -> Iterator[Any]:
    # Worker processes start with debug logging, so the log test sees everything Dask logs.
    saved = os.environ.get("DASK_LOGGING__DISTRIBUTED")
    os.environ["DASK_LOGGING__DISTRIBUTED"] = "debug"
    try:
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=False
        )
    finally:
        if saved is None:
            os.environ.pop("DASK_LOGGING__DISTRIBUTED", None)
        else:
            os.environ["DASK_LOGGING__DISTRIBUTED"] = saved
    # The scheduler and client run in this process: log them at debug level too.
    dist_logger = logging.getLogger("distributed")
    level = dist_logger.level
    dist_logger.setLevel(logging.DEBUG)
    try:
        with cluster, distributed.Client(cluster) as c:
            # No register(): the first query installs the plugin with the binary it is given.
            assert list(count_on_cluster(c, [], binary=binary)) == []
            yield c
    finally:
        dist_logger.setLevel(level)


def local_results(binary: str, files: List[Any], **kwargs: Any) -> Tuple[Dict[int, FileResult], Any]:
    with Coprocess(binary) as cc:
        q = cc.count(files, **kwargs)
        results = {r.index: r for r in q}
        return results, q.summary


def same_result(a: FileResult, b: FileResult) -> bool:
    def key(r: FileResult) -> Tuple[Any, ...]:
        return (r.index, r.counts, r.bytes, r.words, r.offsets, r.snippets, r.truncated,
                r.error.code if r.error else None)  # fmt: skip

    return key(a) == key(b)


def assert_same_summary(cluster: Any, local: Any) -> None:
    for field in ("files", "failed", "skipped", "counts", "words", "cancelled"):
        assert getattr(cluster, field) == getattr(local, field), field


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll (bounded) until check() returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; last: {value!r}")
        time.sleep(0.02)


def _probe_key(name: str, dask_worker: Any = None) -> Optional[str]:
    """Ask the worker's coprocess itself whether a key of that name exists."""
    plugin = dask_worker.plugins[PLUGIN_NAME]
    try:
        plugin.coprocess().count([], key=name).wait()
    except RequestError as exc:
        return exc.code
    return "unlocked"


def assert_forgotten(client: Any, name: str) -> None:
    assert set(client.run(_probe_key, name).values()) == {"unknown_key"}
    for status in cluster_status(client).values():
        assert status is not None and name not in status["unlocked"]


def scheduler_tasks_of(client: Any, qid: str) -> List[str]:
    def tasks(qid: str, dask_scheduler: Any = None) -> List[str]:
        return [str(k) for k in dask_scheduler.tasks if qid in str(k)]

    return client.run_on_scheduler(tasks, qid)  # type: ignore[no-any-return]


def worker_running(client: Any, qid: str) -> Optional[str]:
    """The address of a worker with a batch of the query started (in unlock or count)."""
    for addr, status in cluster_status(client).items():
        if status and status["running"].get(qid):
            return addr
    return None


def stop(pid: int) -> Callable[[], None]:
    os.kill(pid, signal.SIGSTOP)
    return lambda: os.kill(pid, signal.SIGCONT)


def kill_stopped(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def test_sealed_secret_pickles_but_never_prints() -> None:
    import pickle

    from cryptcount.dask import _Batch, _Sealed, _Unlock

    for value in (SECRET, "", b"\x00key", {"passphrase": SECRET}):
        sealed = pickle.loads(pickle.dumps(_Sealed(value)))
        assert sealed.reveal() == value
        assert repr(sealed) == str(sealed) == "<secret>"
    unlock = _Unlock("k", "t", "biographer", _Sealed(SECRET), ())
    batch = _Batch(PLUGIN_NAME, "q", 0, 0, ["/a"], ["rain"], {}, (unlock,))
    assert SECRET not in repr(batch) and SECRET not in repr(unlock)
    assert pickle.loads(pickle.dumps(batch)).unlocks[0].secret.reveal() == SECRET


# -- results -------------------------------------------------------------------------------


def test_every_worker_has_its_coprocess(client: Any, binary: str) -> None:
    statuses = cluster_status(client)
    assert len(statuses) == 2
    pids = set()
    for status in statuses.values():
        assert status is not None and status["coprocess_alive"] and status["unlocked"] == []
        pids.add(status["coprocess_pid"])
    assert len(pids) == 2

    def binary_of(dask_worker: Any = None) -> str:
        return str(dask_worker.plugins[PLUGIN_NAME].binary)

    assert set(client.run(binary_of).values()) == {os.path.abspath(binary)}

    # register(replace=False) keeps the running plugin; register() replaces it: the old plugin's
    # teardown closes its coprocesses and the new one starts others.
    register(client, binary, replace=False)
    assert {s["coprocess_pid"] for s in cluster_status(client).values() if s} == pids
    register(client, binary)
    new_pids = {s["coprocess_pid"] for s in cluster_status(client).values() if s}
    assert len(new_pids) == 2 and not new_pids & pids

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until("the old coprocesses to exit", lambda: all(gone(p) for p in pids))


def test_cluster_result_equals_local_query(client: Any, binary: str, corpus: List[Any]) -> None:
    opts = dict(ignore_case=True, words=True, offsets=True, max_offsets=5)
    local, local_summary = local_results(binary, corpus, terms=TERMS, cipher="biographer", secret=SECRET, **opts)

    q = count_on_cluster(client, corpus, TERMS, cipher="biographer", secret=SECRET, batch_size=37, **opts)
    results = list(q)

    assert sorted(r.index for r in results) == list(range(len(corpus)))  # each file exactly once
    for r in results:
        assert r.path is corpus[r.index]
        assert same_result(r, local[r.index]), (r, local[r.index])
    assert {r.error.code for r in results if r.error} == {"not_found", "not_a_file"}
    assert q.summary.files == len(corpus) and q.summary.failed == 2
    assert_same_summary(q.summary, local_summary)
    assert sum(q.summary.counts) > 0
    # Both workers took part, and the query's key is gone from every coprocess.
    batches = [s["batches"] for s in cluster_status(client).values() if s]
    assert all(any(b[0] == q.id for b in bs) for bs in batches)
    assert q.key_name is not None
    assert_forgotten(client, q.key_name)


class _InFlight(distributed.diagnostics.plugin.SchedulerPlugin):  # type: ignore[misc]
    """Counts, on the scheduler, the tasks whose key holds ``marker``: the most that were unfinished
    (waiting, queued, processing) at once, and the most that the scheduler knew of at once."""

    name = "cryptcount-test-in-flight"

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.unfinished: set = set()
        self.known: set = set()
        self.peak_unfinished = 0
        self.peak_known = 0

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if self.marker not in str(key):
            return
        if finish in ("waiting", "queued", "processing", "no-worker"):
            self.unfinished.add(key)
        else:
            self.unfinished.discard(key)
        if finish == "forgotten":
            self.known.discard(key)
        else:
            self.known.add(key)
        self.peak_unfinished = max(self.peak_unfinished, len(self.unfinished))
        self.peak_known = max(self.peak_known, len(self.known))


def test_at_most_max_in_flight_batches_on_the_scheduler(client: Any, binary: str, plain_files: List[Path]) -> None:
    files = plain_files[:200]
    n = 3
    marker = f"cryptcount-{uuid.uuid4().hex[:8]}"
    # The query's id is made inside count_on_cluster: watch every cryptcount task, with a
    # fresh plugin, and run nothing else meanwhile.
    client.register_plugin(_InFlight("cryptcount-"), name=marker)

    def peaks(dask_scheduler: Any = None) -> Tuple[int, int]:
        plugin = dask_scheduler.plugins[marker]
        return plugin.peak_unfinished, plugin.peak_known

    try:
        q = count_on_cluster(client, files, ["rain", "the"], batch_size=5, max_in_flight=n)
        results = list(q)
        unfinished, known = client.run_on_scheduler(peaks)
    finally:
        client.unregister_scheduler_plugin(marker)
    # 40 batches, never more than 3 submitted and unfinished (all 40 at once before the bound).
    assert 2 <= unfinished <= n, unfinished
    assert q.peak_in_flight == n
    # Taken results are released: the scheduler never held many more than the ones in flight.
    assert known <= 2 * n, known
    local, local_summary = local_results(binary, files, terms=["rain", "the"])
    assert sorted(r.index for r in results) == list(range(len(files)))
    for r in results:
        assert r.path is files[r.index] and same_result(r, local[r.index]), (r, local[r.index])
    assert_same_summary(q.summary, local_summary)


def test_max_in_flight_default_and_validation(client: Any, plain_files: List[Path]) -> None:
    # Default: twice the cluster's worker threads (2 workers x 1 thread here).
    q = count_on_cluster(client, plain_files[:40], ["rain"], batch_size=2)
    assert q.max_in_flight == 4
    assert len(list(q)) == 40 and q.peak_in_flight == 4
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError):
            count_on_cluster(client, plain_files[:3], ["rain"], max_in_flight=bad)


def test_ordered_and_empty(client: Any, binary: str, plain_files: List[Path]) -> None:
    files = plain_files[:90]
    q = count_on_cluster(client, files, ["rain"], batch_size=8, ordered=True)
    indices = [r.index for r in q]
    assert indices == list(range(len(files)))
    local, local_summary = local_results(binary, files, terms=["rain"])
    assert_same_summary(q.summary, local_summary)

    empty = count_on_cluster(client, [], ["rain"], cipher="biographer", secret=SECRET)
    assert list(empty) == []
    assert empty.summary.files == 0 and empty.summary.counts == [0] and not empty.summary.cancelled


def test_unlock_several_keys_for_auto(client: Any, binary: str, plain_files: List[Path], tmp_path: Path) -> None:
    fernet = pytest.importorskip("cryptography.fernet", reason="needs the cryptography package")
    key = fernet.Fernet.generate_key()
    f = fernet.Fernet(key)
    files: List[Any] = []
    for i, p in enumerate(plain_files[:60]):
        if i % 2:
            files.append(p)
        else:
            enc = tmp_path / f"{p.name}.fernet"
            enc.write_bytes(f.encrypt(p.read_bytes()))
            files.append(enc)
    with Coprocess(binary) as cc:
        cc.unlock("work", cipher="fernet", secret=key.decode())
        local = {r.index: r for r in cc.count(files, ["rain"], cipher="auto", keys=["work"])}
    q = count_on_cluster(
        client, files, ["rain"], cipher="auto", keys=["work"], batch_size=7,
        unlock={"work": {"cipher": "fernet", "secret": key.decode()}},
    )  # fmt: skip
    results = list(q)
    assert len(results) == len(files) and all(same_result(r, local[r.index]) for r in results)
    assert {r.cipher for r in results} == {"fernet", "plain"} and q.summary.failed == 0
    assert_forgotten(client, "work")


def test_request_errors_raise_and_end_the_query(client: Any, corpus: List[Any]) -> None:
    q = count_on_cluster(client, corpus, TERMS, cipher="no-such-cipher", secret="x", batch_size=50)
    with pytest.raises(RequestError) as info:
        list(q)
    assert info.value.code == "unknown_cipher"
    # An empty password cannot be a biographer key (the empty secret also crosses pickling).
    q2 = count_on_cluster(client, corpus, TERMS, cipher="biographer", secret="", batch_size=50)
    with pytest.raises(RequestError) as info:
        q2.summary
    assert info.value.code == "bad_secret"
    for query in (q, q2):
        assert query.done
        wait_until("the failed query's tasks to be released", lambda: not scheduler_tasks_of(client, query.id))


def test_keep_unlocked_then_reuse_and_forget(client: Any, corpus: List[Any]) -> None:
    def unlocks() -> Dict[str, int]:
        return {a: s["unlocks"] for a, s in cluster_status(client).items() if s}

    before = unlocks()
    kept = dict(cipher="biographer", secret=SECRET, key_name="kept-diary", keep_unlocked=True, batch_size=30)
    first = count_on_cluster(client, corpus, TERMS, **kept)  # type: ignore[arg-type]
    first_results = {r.index: r for r in first}
    assert set(client.run(_probe_key, "kept-diary").values()) == {"unlocked"}
    assert {a: n - before[a] for a, n in unlocks().items()} == {a: 1 for a in before}  # once per worker

    # The same key again: workers that hold it do not unlock it again.
    again = count_on_cluster(client, corpus, TERMS, **kept)  # type: ignore[arg-type]
    assert {r.index: r.counts for r in again} == {i: r.counts for i, r in first_results.items()}
    # By name only, as a key unlocked on every worker.
    by_name = count_on_cluster(client, corpus, TERMS, key="kept-diary", batch_size=60)
    for r in by_name:
        assert same_result(r, first_results[r.index])
    assert by_name.summary.files == len(corpus)
    assert {a: n - before[a] for a, n in unlocks().items()} == {a: 1 for a in before}

    forget_on_cluster(client, "kept-diary")
    assert_forgotten(client, "kept-diary")


def test_worker_forgets_an_abandoned_key_when_idle(client: Any, binary: str, corpus: List[Any]) -> None:
    """A query whose client never ends it (say the client died): the workers forget its key by
    themselves once it has been idle for forget_idle seconds; a kept key stays."""
    from cryptcount.dask import _Batch, _run_batch, _Sealed, _token, _Unlock

    # Idle long enough that the probe right after the batch finds the key on a loaded machine.
    register(client, binary, forget_idle=2.0)
    try:
        paths = [os.fsdecode(p) for p in corpus[:20]]

        def batch(name: str, keep: bool) -> Any:
            unlock = _Unlock(name, _token("biographer", SECRET, ()), "biographer", _Sealed(SECRET), ())
            b = _Batch(PLUGIN_NAME, uuid.uuid4().hex, 0, 0, paths, ["rain"], {"key": name}, (unlock,), keep)
            return client.submit(_run_batch, b, pure=False, workers=[addr]).result()

        addr = next(iter(cluster_status(client)))
        assert batch("abandoned", keep=False)[0] == "ok"
        assert client.run(_probe_key, "abandoned", workers=[addr])[addr] == "unlocked"
        assert batch("kept", keep=True)[0] == "ok"
        wait_until(
            "the idle key to be forgotten",
            lambda: client.run(_probe_key, "abandoned", workers=[addr])[addr] == "unknown_key",
        )
        assert client.run(_probe_key, "kept", workers=[addr])[addr] == "unlocked"
        forget_on_cluster(client, "kept")
    finally:
        register(client, binary)


# -- cancellation --------------------------------------------------------------------------


def test_cancel_cancels_futures_and_coprocess_requests(
    client: Any, binary: str, plain_files: List[Path], tmp_path: Path
) -> None:
    # Each batch starts with one big (sparse) file per coprocess thread, so a coprocess is still
    # busy on them when it reads the cancel, and has the small files left undispatched. The
    # size is chosen for about half a second of reading with this binary (debug builds are slow).
    big = tmp_path / "sparse.txt"
    probe_mb = 32
    with open(big, "wb") as f:
        f.truncate(probe_mb << 20)
    with Coprocess(binary, args=("--cache-mb", "0")) as cc:
        cc.count([big], ["rain"]).wait()  # the first read also fills the page cache
        t = time.perf_counter()
        cc.count([big], ["rain"]).wait()
        per_mb = max(time.perf_counter() - t, 1e-4) / probe_mb
    with open(big, "wb") as f:
        f.truncate(int(min(max(0.5 / per_mb, probe_mb), 1024)) << 20)

    def threads(dask_worker: Any = None) -> int:
        return int(dask_worker.plugins[PLUGIN_NAME].coprocess().server_info["workers"])

    k = max(client.run(threads).values())
    batch = [big] * k + plain_files[: 50 - k]
    files = batch * 4

    statuses = cluster_status(client)
    resumes = [stop(s["coprocess_pid"]) for s in statuses.values() if s]
    assert len(resumes) == 2
    try:
        q = count_on_cluster(client, files, ["rain"], batch_size=50)
        # Both (stopped) coprocesses have been sent a count request of this query.
        wait_until(
            "both workers to send a batch to their coprocess",
            lambda: all(s and s["requests"].get(q.id) for s in cluster_status(client).values()),
        )
        q.cancel()
    finally:
        for resume in resumes:
            resume()
    assert list(q) == []
    s = q.summary
    assert s.cancelled and s.files == 0 and s.skipped == len(files)

    # Dask dropped the futures: the two batches that had not started never ran.
    wait_until("the scheduler to drop the query's tasks", lambda: not scheduler_tasks_of(client, q.id))

    def ran(qid: str) -> List[Tuple[Any, ...]]:
        sts = [st for st in cluster_status(client).values() if st]
        if any(st["running"].get(qid) for st in sts):
            return []
        return [b for st in sts for b in st["batches"] if b[0] == qid]

    batches = wait_until("the two started batches to end", lambda: len(ran(q.id)) == 2 and ran(q.id))
    # Each coprocess ended its request as cancelled, with files never dispatched.
    for _, _, cancelled, nfiles, skipped in batches:
        assert cancelled and skipped > 0 and nfiles + skipped == 50
    time.sleep(0.3)
    assert len(ran(q.id)) == 2

    def in_flight(dask_worker: Any = None) -> int:
        return int(dask_worker.plugins[PLUGIN_NAME].coprocess().stats()["in_flight"])

    wait_until("the coprocesses to be idle", lambda: set(client.run(in_flight).values()) == {0})
    big.unlink()  # its pages leave the page cache with it


def test_break_cancels_and_forgets_the_key(client: Any, corpus: List[Any]) -> None:
    q = count_on_cluster(client, corpus, TERMS, cipher="biographer", secret=SECRET, batch_size=10)
    seen = []
    for r in q:
        seen.append(r)
        break
    assert q.done and q.summary.cancelled
    assert q.summary.files + q.summary.skipped == len(corpus) and q.summary.skipped > 0
    assert q.key_name is not None
    assert_forgotten(client, q.key_name)
    wait_until("the scheduler to drop the query's tasks", lambda: not scheduler_tasks_of(client, q.id))
    wait_until(
        "no batch of the query to run",
        lambda: all(st and not st["running"].get(q.id) for st in cluster_status(client).values()),
    )


def test_close_from_another_thread_ends_iteration(client: Any, plain_files: List[Path]) -> None:
    import threading

    resumes = [stop(s["coprocess_pid"]) for s in cluster_status(client).values() if s]
    try:
        q: ClusterQuery = count_on_cluster(client, plain_files, ["rain"], batch_size=50)
        wait_until("a batch to start", lambda: worker_running(client, q.id))
        got: List[Any] = []
        t = threading.Thread(target=lambda: got.extend(q))
        t.start()
        time.sleep(0.1)  # let the thread block waiting for a batch (not needed for correctness)
        q.cancel()
    finally:
        for resume in resumes:
            resume()
    t.join(30)
    assert not t.is_alive() and got == []
    assert q.summary.cancelled


# -- failures ------------------------------------------------------------------------------


def test_coprocess_killed_batch_is_retried_and_secret_never_logged(
    client: Any, binary: str, corpus: List[Any]
) -> None:
    local, local_summary = local_results(binary, corpus, terms=TERMS, cipher="biographer", secret=SECRET)
    statuses = cluster_status(client)
    victim_addr, victim = next((a, s) for a, s in statuses.items() if s)
    victim_cc = victim["coprocess_pid"]
    os.kill(victim_cc, signal.SIGSTOP)
    try:
        q = count_on_cluster(client, corpus, TERMS, cipher="biographer", secret=SECRET, batch_size=20)
        wait_until(
            "a batch to start on the victim",
            lambda: (cluster_status(client)[victim_addr] or {}).get("running", {}).get(q.id),
        )
    finally:
        kill_stopped(victim_cc)
    results = list(q)
    assert sorted(r.index for r in results) == list(range(len(corpus)))
    for r in results:
        assert same_result(r, local[r.index])
    assert_same_summary(q.summary, local_summary)
    after = cluster_status(client)[victim_addr]
    assert after is not None and after["coprocess_starts"] == victim["coprocess_starts"] + 1
    assert after["coprocess_pid"] != victim_cc

    # The failed attempt was logged (Dask logs the task it ran), and no log holds the secret.
    worker_logs = client.get_worker_logs()
    victim_text = "\n".join(msg for _, msg in worker_logs[victim_addr])
    assert "Compute Failed" in victim_text and "CoprocessLost" in victim_text
    texts = [msg for logs in worker_logs.values() for _, msg in logs]
    texts += [msg for logs in client.get_worker_logs(nanny=True).values() for _, msg in logs]
    texts += [msg for _, msg in client.get_scheduler_logs()]
    assert len(texts) > 50  # debug logging is on: the logs are not empty
    assert not [t for t in texts if SECRET in t]

    # Nor anything in the workers' scratch directories.
    def scratch_holds(secret: str, dask_worker: Any = None) -> List[str]:
        hits = []
        for root, _, names in os.walk(dask_worker.local_directory):
            for name in names:
                try:
                    with open(os.path.join(root, name), "rb") as f:
                        if secret.encode() in f.read():
                            hits.append(name)
                except OSError:
                    pass
        return hits

    assert all(hits == [] for hits in client.run(scratch_holds, SECRET).values())


def test_worker_killed_mid_query_result_still_complete(client: Any, binary: str, corpus: List[Any]) -> None:
    """Runs last: kills a worker process; the cluster's nanny starts a new one."""
    local, local_summary = local_results(binary, corpus, terms=TERMS, cipher="biographer", secret=SECRET)
    statuses = cluster_status(client)
    victim_addr, victim = next((a, s) for a, s in statuses.items() if s)
    os.kill(victim["coprocess_pid"], signal.SIGSTOP)  # its batches wait there until we kill it
    try:
        q = count_on_cluster(client, corpus, TERMS, cipher="biographer", secret=SECRET, batch_size=20)
        wait_until(
            "a batch to start on the victim",
            lambda: (cluster_status(client)[victim_addr] or {}).get("running", {}).get(q.id),
        )
        os.kill(victim["pid"], signal.SIGKILL)
    finally:
        kill_stopped(victim["coprocess_pid"])
    results = list(q)
    assert len(results) == len(corpus)
    assert sorted(r.index for r in results) == list(range(len(corpus)))
    for r in results:
        assert same_result(r, local[r.index])
    assert_same_summary(q.summary, local_summary)
    assert victim_addr not in client.scheduler_info()["workers"]
    # The replacement worker gets its own coprocess from the plugin.
    client.wait_for_workers(2, timeout=60)
    wait_until(
        "the replacement worker's coprocess",
        lambda: all(s and s["coprocess_alive"] for s in cluster_status(client).values()),
    )



def test_a_wrong_key_never_reads_what_the_right_key_decrypted(client: Any, tmp_path: Path) -> None:
    """On the cluster's long-lived coprocesses (plaintext cache on): the right key first, then a
    wrong Fernet key (same length) as an inline secret and as a kept name: every result fails."""
    fernet = pytest.importorskip("cryptography.fernet", reason="needs the cryptography package")
    right, wrong = fernet.Fernet.generate_key().decode(), fernet.Fernet.generate_key().decode()
    files = []
    for i in range(40):
        p = tmp_path / f"iso-{i:02d}.token"
        p.write_bytes(fernet.Fernet(right.encode()).encrypt(b"rain and more rain\n"))
        files.append(p)
    first = list(count_on_cluster(client, files, ["rain"], cipher="fernet", secret=right, batch_size=7))
    assert len(first) == len(files) and all(r.counts == [2] for r in first)
    for kept in (False, True):
        q = count_on_cluster(client, files, ["rain"], cipher="fernet", secret=wrong, batch_size=7,
                             key_name=f"wrong-{kept}", keep_unlocked=kept)  # fmt: skip
        results = list(q)
        assert len(results) == len(files)
        for r in results:
            assert not r.cached and r.error is not None and r.error.code == "decrypt_failed", r
        if kept:
            forget_on_cluster(client, f"wrong-{kept}")


def test_relative_paths_are_the_clients_at_call_time(client: Any, tmp_path: Path) -> None:
    # Workers run elsewhere (another cwd, possibly another machine): a relative path means the
    # client's current directory when count_on_cluster is called, and results report it as given.
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "d.txt").write_bytes(b"rain rain")
    (tmp_path / "two" / "d.txt").write_bytes(b"rain")
    old = os.getcwd()
    try:
        os.chdir(tmp_path / "one")
        q = count_on_cluster(client, ["d.txt", b"d.txt", Path("d.txt")], ["rain"], ordered=True)
        os.chdir(tmp_path / "two")  # after the call: changes nothing for that query
        assert [(r.path, r.counts) for r in q] == [("d.txt", [2]), (b"d.txt", [2]), (Path("d.txt"), [2])]
        q = count_on_cluster(client, ["d.txt"], ["rain"])
        assert [(r.path, r.counts) for r in q] == [("d.txt", [1])]
    finally:
        os.chdir(old)
