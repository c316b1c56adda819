"""Scale: a 200,000-file `count_on_cluster` keeps the client's and the scheduler's memory flat.

The 2,000 plain stories repeated as paths (50,000 files, then 200,000), counted on a local
cluster of 2 worker processes (1 thread each) with `cryptcount.dask.count_on_cluster`
(batches of 500, at most `max_in_flight` batches in flight: the default, twice the worker
threads). The scheduler runs in a process of its own (distributed's SubprocessCluster, a
LocalCluster whose scheduler is a subprocess; LocalCluster's runs inside the client), so the two
memories are apart. A sampler reads the client's VmRSS (/proc/self/status) and the scheduler's
(`client.run_on_scheduler`) every 0.2 s; each figure is the peak during the query minus the
value just before it (the list of paths itself, made before, is not counted). Flat: the peak
for 200,000 files is within 10 MB of the one for 50,000 (four times the batches). The results
(each file's count and the summary) must equal a local query's (`Coprocess.count`, the same
files). Peer, same run: the 200,000 files with every batch submitted at once (the behaviour
before the bound), which shows what the bound saves.

Dask's own debug log of recent messages (`distributed.admin.low-level-log-length`, default
1000 per connection) holds every message's task arguments, so with the default the scheduler
grows by about one batch's paths per batch (~65 KB here) until 1000 per worker: it is set to
10 for this measurement (see examples/python/README.md, "Long queries").
"""

import os
import sys
import threading
import time
from array import array

DRIVER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples", "python")
sys.path.insert(0, DRIVER)

BATCH = 500
FLAT_MB = 10
LOG_LENGTH = 10


def _rss_mb(pid="self"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _scheduler_rss_mb(dask_scheduler=None):
    """The scheduler's pid, VmRSS (MB) and how many tasks it holds."""
    return os.getpid(), _rss_mb(), len(dask_scheduler.tasks) if dask_scheduler is not None else 0


class _Sampler:
    """Samples the client's and the scheduler's RSS every `period` s on a thread."""

    def __init__(self, client, period=0.2):
        self.client = client
        self.period = period
        self.samples = []  # (t, client MB, scheduler MB, scheduler tasks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        _, sched, tasks = self.client.run_on_scheduler(_scheduler_rss_mb)
        self.samples.append((time.perf_counter(), _rss_mb(), sched, tasks))

    def _run(self):
        while not self._stop.wait(self.period):
            try:
                self._sample()
            except Exception:
                return

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def growth(self):
        """(client, scheduler) peak minus the first sample, MB; the most tasks the scheduler held."""
        c0, s0 = self.samples[0][1], self.samples[0][2]
        return (max(s[1] for s in self.samples) - c0, max(s[2] for s in self.samples) - s0,
                max(s[3] for s in self.samples))


def _local(binary, files, term):
    from cryptcount import Coprocess

    counts = array("q", [-1]) * len(files)
    with Coprocess(binary) as cc:
        q = cc.count(files, [term])
        for r in q:
            counts[r.index] = r.counts[0] if r.ok else -2
        return counts, q.summary


def _on_cluster(client, binary, files, term, log, what, **kw):
    from cryptcount.dask import count_on_cluster

    counts = array("q", [-1]) * len(files)
    with _Sampler(client) as sampler:
        t0 = time.perf_counter()
        q = count_on_cluster(client, files, [term], batch_size=BATCH, binary=binary, **kw)
        for r in q:
            counts[r.index] = r.counts[0] if r.ok else -2
        summary = q.summary
        elapsed = time.perf_counter() - t0
    client_mb, sched_mb, tasks = sampler.growth()
    trace = ", ".join(f"{s[0] - sampler.samples[0][0]:.0f}s {s[1]:.0f}/{s[2]:.0f}"
                      for s in sampler.samples[:: max(1, len(sampler.samples) // 12)])
    log(f"14.8 {what}: {len(files):,} files in {elapsed:.1f} s, peak in flight {q.peak_in_flight} batches; "
        f"RSS growth client {client_mb:.1f} MB, scheduler {sched_mb:.1f} MB; scheduler held at most {tasks} tasks; samples (client/scheduler MB): {trace}")
    return counts, summary, client_mb, sched_mb, elapsed, q.peak_in_flight, tasks


def _same(summary, local):
    return all(getattr(summary, f) == getattr(local, f) for f in ("files", "failed", "skipped", "counts"))


def run(ctx):
    try:
        import dask
        import distributed
        from distributed.deploy.subprocess import SubprocessCluster
    except ImportError as exc:
        ctx.log(f"14.8 skipped: {exc}")
        return
    import cloudpickle

    # The scheduler and the workers are subprocesses: they import the driver from this checkout,
    # and take this module's functions by value (they cannot import it).
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (DRIVER, os.environ.get("PYTHONPATH")) if p)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    stories = ctx.corpus["plain"]
    term = ctx.term
    sizes = (50_000, 200_000)
    # Dask keeps the last `distributed.admin.low-level-log-length` (default 1000) messages of
    # every batched connection for debugging (BatchedSend.recent_message_log), each batch's
    # paths included: up to ~1000 batches' worth per worker on the scheduler, and per client,
    # before it levels off. Measured here as a long-running deployment would set it.
    os.environ["DASK_DISTRIBUTED__ADMIN__LOW_LEVEL_LOG_LENGTH"] = str(LOG_LENGTH)
    cluster = SubprocessCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40)
    results = {}
    try:
        with dask.config.set({"distributed.admin.low-level-log-length": LOG_LENGTH}), cluster, \
                distributed.Client(cluster) as client:
            sched_pid, _, _ = client.run_on_scheduler(_scheduler_rss_mb)
            ctx.log(f"14.8 scheduler pid {sched_pid}, client pid {os.getpid()}")
            # Warm up: plugin registered, coprocesses started, files in their caches.
            _on_cluster(client, ctx.binary, stories, term, ctx.log, "warm-up")
            for n in sizes:
                files = (stories * (n // len(stories) + 1))[:n]
                local_counts, local_summary = _local(ctx.binary, files, term)
                got = _on_cluster(client, ctx.binary, files, term, ctx.log, f"{n:,} files, bounded")
                if got[0] != local_counts or not _same(got[1], local_summary):
                    raise SystemExit(f"14.8: the cluster's results for {n:,} files differ from a local query's")
                results[n] = got
            n = sizes[-1]
            files = (stories * (n // len(stories) + 1))[:n]
            unbounded = _on_cluster(client, ctx.binary, files, term, ctx.log, f"{n:,} files, all batches at once",
                                    max_in_flight=10**9)
            if unbounded[0] != local_counts or not _same(unbounded[1], local_summary):
                raise SystemExit("14.8: the unbounded cluster query's results differ from a local query's")
    finally:
        os.environ.pop("DASK_DISTRIBUTED__ADMIN__LOW_LEVEL_LOG_LENGTH", None)
    small, big = results[sizes[0]], results[sizes[1]]
    load = os.getloadavg()[0]
    flat_client = big[2] <= small[2] + FLAT_MB
    flat_sched = big[3] <= small[3] + FLAT_MB
    ctx.table.add(8, f"dask, {sizes[1]:,} files ({sizes[1] // BATCH} batches of {BATCH}, <= {big[5]} in flight): "
                     f"client RSS growth, {big[4]:.0f} s (load {load:.1f})",
                  f"{big[2]:.0f} MB", f"{sizes[0]:,} files {small[2]:.0f} MB; all at once {unbounded[2]:.0f} MB",
                  f"{big[2] - small[2]:+.0f} MB", f"within {FLAT_MB} MB of {sizes[0]:,}", flat_client)
    ctx.table.add(8, "  the same: scheduler RSS growth (results equal a local query's)", f"{big[3]:.0f} MB",
                  f"{sizes[0]:,} files {small[3]:.0f} MB; all at once {unbounded[3]:.0f} MB",
                  f"{big[3] - small[3]:+.0f} MB", f"within {FLAT_MB} MB of {sizes[0]:,}", flat_sched)
    ctx.table.add("8'", "  the same: tasks the scheduler held at most", f"{big[6]}",
                  f"{sizes[0]:,} files {small[6]}; all at once {unbounded[6]}", "-",
                  f"<= 2 x max_in_flight ({2 * big[5]}; released ones lag)", big[6] <= 2 * big[5])
