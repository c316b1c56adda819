"""Tiny request through the Python driver: p50 <= 50 us, p99 <= 500 us.

One cached biographer file, one term: ``list(cc.count([small], [term], key="diary"))`` through
`cryptcount.Coprocess` (request built, sent, the file result and the summary read back and
turned into Python objects), against the raw blocking client (run.py's `Coprocess`: one
thread, send then read) sending the same request to its own coprocess, in the same run. The
two are timed in turn, ROUNDS rounds of N requests each; each side's figure is its best round
(the machine is shared). Second figures, less sensitive to load: this process's CPU time per
request (the driver's own cost, both sides measured alike) and its run-queue wait per request
(time runnable but waiting for a CPU: the load's share of the latency).

Both sides run with their default spinning (the driver's ``spin_us`` and ``serve --spin-us``,
100 us each): the coprocess's spin after an answer helps the raw client too. A third client, the
driver with spinning off on both sides (``spin_us=0``), is timed in the same rounds (row 6"). Spinning pays on
a quiet machine, where a blocked process waits for its (halted) virtual CPU to be woken; under
load the CPUs never idle and the figures follow the run queue instead.
"""

import os
import sys
import time

import corpus as corpus_mod

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "examples", "python"))
from cryptcount import Coprocess as DriverCoprocess  # noqa: E402

P50_GOAL_US = 50
P99_GOAL_US = 500


def _schedstat_ns():
    """(run, run-queue wait) nanoseconds summed over this process's threads."""
    run = wait = 0
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/schedstat") as f:
                r, w, _ = map(int, f.read().split())
        except (OSError, ValueError):
            continue
        run += r
        wait += w
    return run, wait


def _round(fn, n):
    """p50, p99 (us), CPU us/request, run-queue wait us/request over n calls."""
    clock = time.perf_counter_ns
    samples = [0] * n
    run0, wait0 = _schedstat_ns()
    for i in range(n):
        t0 = clock()
        fn()
        samples[i] = clock() - t0
    run1, wait1 = _schedstat_ns()
    samples.sort()
    return (samples[n // 2] / 1e3, samples[min(n - 1, int(n * 0.99))] / 1e3, (run1 - run0) / n / 1e3,
            (wait1 - wait0) / n / 1e3)


def run(ctx):
    c = ctx.corpus
    small = min(c["bio"], key=os.path.getsize)
    pw = corpus_mod.PASSWORD.decode()
    term = ctx.term
    n = 2000 if ctx.quick else 10000
    rounds = 5 if ctx.quick else 9

    raw = ctx.Coprocess(ctx.binary)
    raw.call({"op": "unlock", "name": "diary", "cipher": "biographer", "secret": pw})
    raw_req = {"op": "count", "files": [small], "terms": [term], "key": "diary"}
    _, done, files = raw.call(raw_req)
    expect = files[0]["counts"]

    with DriverCoprocess(ctx.binary) as cc, DriverCoprocess(ctx.binary, spin_us=0) as still:
        cc.unlock("diary", "biographer", secret=pw)
        still.unlock("diary", "biographer", secret=pw)

        def counter(client):
            def call():
                (r,) = client.count([small], [term], key="diary")
                if r.counts != expect:
                    raise SystemExit(f"14.6: the driver counted {r.counts}, the raw client {expect}")

            return call

        driver, no_spin = counter(cc), counter(still)

        def raw_call():
            raw.call(raw_req)

        for _ in range(500):
            driver()
            no_spin()
            raw_call()
        best = {}
        for _ in range(rounds):
            for name, fn in (("driver", driver), ("no-spin", no_spin), ("raw", raw_call)):
                r = _round(fn, n)
                ctx.log(f"14.6 {name}: p50 {r[0]:.1f} us, p99 {r[1]:.1f} us, CPU {r[2]:.1f} us/req, "
                        f"run-queue wait {r[3]:.1f} us/req")
                b = best.get(name)
                best[name] = r if b is None else tuple(min(x, y) for x, y in zip(b, r))
    raw.close()

    d, p = best["driver"], best["raw"]
    load = os.getloadavg()[0]
    ctx.table.add(6, f"tiny request through the Python driver (1 cached file, 1 term; load {load:.1f})",
                  f"p50 {d[0]:.0f} us, p99 {d[1]:.0f} us",
                  f"raw client p50 {p[0]:.0f} us, p99 {p[1]:.0f} us", f"{d[0] / p[0]:.2f}x (p50)",
                  f"p50 <= {P50_GOAL_US} us, p99 <= {P99_GOAL_US} us",
                  d[0] <= P50_GOAL_US and d[1] <= P99_GOAL_US)
    q = best["no-spin"]
    ctx.table.add('6"', "  the same, spinning off on both sides (spin_us=0: serve --spin-us 0)",
                  f"p50 {q[0]:.0f} us, p99 {q[1]:.0f} us", f"spinning p50 {d[0]:.0f} us, p99 {d[1]:.0f} us",
                  f"{d[0] / q[0]:.2f}x (p50)", "(context)", True)
    ctx.table.add("6'", "  the same: this process's CPU time, and run-queue wait, per request",
                  f"CPU {d[2]:.0f} us, wait {d[3]:.0f} us", f"raw CPU {p[2]:.0f} us, wait {p[3]:.0f} us",
                  f"{d[2] / p[2]:.2f}x (CPU)", "(context)", True)
