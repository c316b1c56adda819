#!/usr/bin/env python3
"""cryptcount benchmarks: cryptcount and its peers side by side, one table.

    python3 Benchmarks/run.py --bin .build/release/cryptcount      (or: make bench)
    BENCH_QUICK=1 ... for a smaller, faster run

Corpora are generated under Benchmarks/corpus/ on first use (see corpus.py) and reused.
cryptcount is timed from the parent's side: from writing the request to reading its `done`,
through a warm coprocess, with a blocking client that decodes every frame it reads.
Peers are timed as the processes/loops a user would run. Every figure is a median of
several runs (best of N: the machine may be shared, and the minimum is the least disturbed
figure, for cryptcount and its peers alike); files are in the OS page cache for everybody
("cold" means cryptcount's plaintext cache is off). cryptcount requests use the opt-in
`"batch": 256` (file results grouped into `files` frames) and `"compact": true` (a counted
file as `[index, counts, bytes, cached]`, as the Python driver asks for); BENCH_BATCH=1
measures the default one-frame-per-file framing instead, BENCH_COMPACT=0 the results as maps,
and rows marked "1 frame/file" or "as maps" show them side by side.
"""

import argparse
import os
import platform
import struct
import subprocess
import sys
import threading
import time

# numpy (corpus generation) must not leave OpenBLAS threads spinning beside the measurements.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402
import limits  # noqa: E402
import rg  # noqa: E402
import round2  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
REPEAT = 3 if QUICK else 9
BATCH = int(os.environ.get("BENCH_BATCH", "256"))
COMPACT = os.environ.get("BENCH_COMPACT", "1") not in ("", "0")
TERM = "garden"
TERMS16 = [
    "the", "and", "garden", "morning", "letter", "window", "river", "evening",
    "lighthouse", "zeppelin", "marmalade", "telegram", "silence", "promise", "stranger", "winter",
]


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class Coprocess:
    """A blocking client of `cryptcount serve`."""

    def __init__(self, binary, *args):
        self.proc = subprocess.Popen(
            [binary, "serve", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
        self.out = self.proc.stdout.fileno()
        self.inp = self.proc.stdin.fileno()
        self.buf = bytearray()
        self.pos = 0
        self.next_id = 1
        self.call({"op": "hello"})

    def send(self, obj):
        payload = msgpack.packb(obj)
        data = memoryview(struct.pack(">I", len(payload)) + payload)
        while data:
            n = os.write(self.inp, data)
            data = data[n:]

    def frame(self):
        while True:
            avail = len(self.buf) - self.pos
            if avail >= 4:
                (n,) = struct.unpack_from(">I", self.buf, self.pos)
                if avail >= 4 + n:
                    start = self.pos + 4
                    value = msgpack.unpackb(memoryview(self.buf)[start : start + n])
                    self.pos = start + n
                    return value
            if self.pos > (1 << 20):
                del self.buf[: self.pos]
                self.pos = 0
            # 64 KiB: a pipe holds no more, and a buffer over 128 KiB costs an mmap, an mremap and a
            # munmap per read (the tiny-request rows would time those).
            chunk = os.read(self.out, 1 << 16)
            if not chunk:
                raise RuntimeError("cryptcount closed its output")
            self.buf += chunk

    def call(self, req):
        """Sends one request and reads up to its terminal response: (seconds, terminal, file frames)."""
        rid = self.next_id
        self.next_id += 1
        req = dict(req, id=rid)
        files = []
        t0 = time.perf_counter()
        self.send(req)
        while True:
            r = self.frame()
            t = r.get("type")
            if t == "file":
                files.append(r)
                continue
            if t == "files":  # opt-in batches ("batch": N)
                files.extend(r["results"])
                continue
            if r.get("id") == rid:
                elapsed = time.perf_counter() - t0
                if r.get("type") == "error":
                    raise RuntimeError(f"request failed: {r}")
                return elapsed, r, files

    def sched_ns(self):
        """(run, runqueue wait) nanoseconds summed over the coprocess's threads (schedstat)."""
        run = wait = 0
        base = f"/proc/{self.proc.pid}/task"
        for t in os.listdir(base):
            try:
                r, w, _ = map(int, open(f"{base}/{t}/schedstat").read().split())
            except (OSError, ValueError):
                continue
            run += r
            wait += w
        return run, wait

    def peak_rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()


def best_time(fn, repeat=REPEAT):
    """Best of `repeat` runs: (seconds, the last run's result)."""
    times = []
    result = None
    for _ in range(repeat):
        t, result = fn()
        times.append(t)
    return min(times), result


def best_alternating(fns, repeat=REPEAT):
    """Runs the timed functions in turn, `repeat` rounds, so that all of them see the same
    machine (other work on a shared machine comes and goes): [(best seconds, last result)]."""
    best = [None] * len(fns)
    last = [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t, r = fn()
            best[i] = t if best[i] is None else min(best[i], t)
            last[i] = r
    return list(zip(best, last))


def timed(fn):
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def rg_count(paths_or_dir, term):
    """`rg --count-matches -F TERM ...`: (seconds, total matches)."""
    return rg.timed_count(["-F", term], paths_or_dir)


def rg_regex(paths_or_dir, pattern):
    """`rg --count-matches -e PATTERN ...`: (seconds, total matches)."""
    return rg.timed_count(["-e", pattern], paths_or_dir)


# Issue 13: grep users' patterns.
PATTERNS = [r"\b\w+ing\b", r"[A-Z][a-z]+ [A-Z][a-z]+", r"\d{4}-\d{2}-\d{2}", r"(?i)heron|egret|swan",
            r"rain(y|fall|ed)?"]


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    def ver(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
        except Exception:
            return "?"
    return [
        f"CPU: {model}, {os.cpu_count()} cores; RAM {mem}; {platform.system()} {platform.release()}",
        f"{ver(['swift', '--version'])}; {ver(['rg', '--version'])}; Python {platform.python_version()}",
    ]


class Table:
    def __init__(self):
        self.rows = []

    def add(self, target, what, ours, peer, ratio, goal, ok):
        self.rows.append((target, what, ours, peer, ratio, goal, "met" if ok else "MISSED"))
        log(f"{target} {what}: {ours} | {peer} | {ratio} | {goal} | {'met' if ok else 'MISSED'}")

    def print(self):
        head = ("#", "measurement", "cryptcount", "peer", "ratio", "target", "")
        widths = [max(len(str(r[i])) for r in self.rows + [head]) for i in range(len(head))]
        def line(r):
            return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
        print(line(head))
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for r in self.rows:
            print(line(r))


def ms(t):
    return f"{t * 1000:.1f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--only", default="", help="comma-separated target numbers to run")
    args = ap.parse_args()
    only = set(args.only.split(",")) - {""}
    def want(n):
        return not only or str(n) in only

    binary = os.path.abspath(args.bin)
    big_bytes = (256 << 20) if QUICK else (1 << 30)
    c = corpus.ensure(os.path.join(HERE, "corpus"), big_bytes, log)
    corpus.fresh_in_page_cache(c["big"])
    pw = corpus.PASSWORD.decode()
    n_stories = len(c["plain"])
    bio_bytes = sum(os.path.getsize(p) for p in c["bio"])
    plain_bytes = sum(os.path.getsize(p) for p in c["plain"])
    table = Table()
    cores = os.cpu_count() or 1
    started = time.time()
    load_start = os.getloadavg()[0]

    # This machine's ceilings first (issue 14): rows bound by one of them say "x of the limit".
    ceilings = limits.measure(QUICK, log)

    # Warm the page cache for everybody.
    for group in ("plain", "bio", "fernet", "age"):
        for p in c[group]:
            with open(p, "rb") as f:
                f.read()

    rg_t, rg_total = best_time(lambda: rg_count(c["plain_dir"], TERM))
    log(f"rg: {ms(rg_t)}, {rg_total} matches of {TERM!r}")

    def count_req(paths, terms, **kw):
        return {"op": "count", "files": paths, "terms": terms, "batch": BATCH, "compact": COMPACT, **kw}

    def timed_call(s, req):
        r = s.call(req)
        return r[0], r

    def check(done, expect, what):
        if done["counts"][0] != expect:
            raise SystemExit(f"{what}: cryptcount counted {done['counts'][0]}, the peer {expect}")

    # 1. Plain text.
    if want(1):
        s = Coprocess(binary)
        s.call(count_req(c["plain"], [TERM]))
        (t, (_, done, _)), (t_single, _), (rg_t, _) = best_alternating([
            lambda: timed_call(s, count_req(c["plain"], [TERM])),
            lambda: timed_call(s, count_req(c["plain"], [TERM], batch=1)),
            lambda: rg_count(c["plain_dir"], TERM)])
        check(done, rg_total, "plain")
        s.close()
        table.add(1, f"plain, {n_stories} stories, 1 term", ms(t), f"rg {ms(rg_t)}", f"{t / rg_t:.2f}x", "<= 1.0x rg", t <= rg_t)
        table.add("1'", "  the same, 1 frame/file", ms(t_single), f"rg {ms(rg_t)}", f"{t_single / rg_t:.2f}x",
                  "(context)", True)

    # 2 and 5. Biographer, cold (cache off), 1 and N workers.
    cold = {}
    sched = {}
    if want(2) or want(5):
        # 1 worker, N workers and rg in turn, so that the ratios see the same machine.
        req = count_req(c["bio"], [TERM], key="diary")
        servers = {}
        for workers in sorted({1, cores}):
            servers[workers] = Coprocess(binary, "--cache-mb", "0", "--workers", str(workers))
            servers[workers].call({"op": "unlock", "name": "diary", "cipher": "biographer", "secret": pw})
            servers[workers].call(req)
        before = {w: sv.sched_ns() for w, sv in servers.items()}
        order = sorted(servers)
        # The N-worker request once more with its results as maps (context: what a parent's
        # decoding of 2,000 map results costs the row; the client shares the workers' cores).
        # Its own coprocess, so that row 5' counts the compact requests alone.
        maps_req = dict(req, compact=False)
        maps_server = Coprocess(binary, "--cache-mb", "0", "--workers", str(cores))
        maps_server.call({"op": "unlock", "name": "diary", "cipher": "biographer", "secret": pw})
        maps_server.call(maps_req)
        results = best_alternating([(lambda sv: lambda: timed_call(sv, req))(servers[w]) for w in order]
                                   + [lambda: timed_call(maps_server, maps_req),
                                      lambda: rg_count(c["plain_dir"], TERM)])
        maps_server.close()
        t_maps = results[-2][0]
        for w, (tw, (_, done, _)) in zip(order, results):
            check(done, rg_total, "biographer")
            cold[w] = tw
            r1, w1 = servers[w].sched_ns()
            sched[w] = ((r1 - before[w][0]) / REPEAT / 1e6, (w1 - before[w][1]) / REPEAT / 1e6)
            servers[w].close()
        rg_t = results[-1][0]
        t = cold[cores]
        if want(2):
            gbps = bio_bytes / t / 1e9
            table.add(2, f"biographer cold, {bio_bytes / 1e6:.0f} MB ({gbps:.2f} GB/s)", ms(t), f"rg {ms(rg_t)}",
                      f"{t / rg_t:.2f}x", "<= 4x rg", t <= 4 * rg_t)
        if want(5):
            sp = cold[1] / cold[cores]
            table.add(5, f"biographer cold, {cores} workers vs 1", ms(cold[cores]), f"1 worker {ms(cold[1])}",
                      f"{sp:.2f}x", f">= 1.6x", sp >= 1.6)
            run_ms, wait_ms = sched[cores]
            table.add("5'", f"  {cores} workers: CPU time, and time runnable but waiting for a CPU, per request",
                      f"{run_ms:.0f} ms CPU", f"{wait_ms:.0f} ms waiting", "-", "(context)", True)
            table.add("5''", f"  {cores} workers, results as maps (\"compact\": false)", ms(t_maps),
                      f"1 worker {ms(cold[1])}", f"{cold[1] / t_maps:.2f}x", "(context)", True)

    # Seed-style pure Python on a subset, scaled (a full run would take minutes).
    if want(2):
        subset = c["bio"][: (50 if QUICK else 200)]
        def seed():
            n = 0
            for p in subset:
                n += corpus.seed_decrypt(open(p, "rb").read(), corpus.PASSWORD).count(TERM.encode())
            return n
        t_seed, _ = timed(seed)
        t_seed_all = t_seed * n_stories / len(subset)
        table.add("2'", f"biographer cold vs seed pure Python (timed on {len(subset)}, scaled)",
                  ms(cold.get(cores, float('nan'))), f"seed {t_seed_all:.1f} s",
                  f"{t_seed_all / cold[cores]:.0f}x faster", "(context)", True)

    # 3 and 4. Biographer, warm; 16 terms vs 1.
    if want(3) or want(4):
        s = Coprocess(binary)
        s.call({"op": "unlock", "name": "diary", "cipher": "biographer", "secret": pw})
        req = count_req(c["bio"], [TERM], key="diary")
        s.call(req)
        req16 = count_req(c["bio"], TERMS16, key="diary")
        (t1, (_, done, files)), (ts, _), (t16, _), (rg_t, _) = best_alternating([
            lambda: timed_call(s, req), lambda: timed_call(s, dict(req, batch=1)), lambda: timed_call(s, req16),
            lambda: rg_count(c["plain_dir"], TERM)])
        check(done, rg_total, "biographer warm")
        assert all(f[3] if isinstance(f, list) else f.get("cached") for f in files)
        if want(3):
            table.add(3, "biographer warm (cached), 1 term", ms(t1), f"rg {ms(rg_t)}", f"{t1 / rg_t:.2f}x",
                      "<= 1.0x rg", t1 <= rg_t)
            table.add("3'", "  the same, 1 frame/file", ms(ts), f"rg {ms(rg_t)}", f"{ts / rg_t:.2f}x", "(context)",
                      True)
        if want(4):
            table.add(4, "biographer warm, 16 terms vs 1", ms(t16), f"1 term {ms(t1)}", f"{t16 / t1:.2f}x",
                      "<= 2x", t16 <= 2 * t1)
        # 6. Tiny requests.
        if want(6):
            small = min(c["bio"], key=os.path.getsize)
            tiny = count_req([small], [TERM], key="diary", batch=1)
            for _ in range(200):
                s.call(tiny)
            # Best of REPEAT rounds, as every other figure (and 14.6): a round is 3,000 requests in
            # a fraction of a second, so one stall of the VM's host can hold its whole 1% tail.
            p50 = p99 = float("inf")
            for _ in range(REPEAT):
                lat = sorted(s.call(tiny)[0] for _ in range(3000 if not QUICK else 1000))
                r50, r99 = lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99)] * 1e6
                log(f"6 round: p50 {r50:.0f} us, p99 {r99:.0f} us")
                p50, p99 = min(p50, r50), min(p99, r99)
            table.add(6, "tiny request (1 cached file, 1 term)", f"p50 {p50:.0f} us, p99 {p99:.0f} us", "-",
                      "-", "p50 <= 100 us, p99 <= 1 ms", p50 <= 100 and p99 <= 1000)
        s.close()

    # 7 and 8a. Fairness and memory through a 20,000-file request, cache off.
    if want(7) or want(8):
        reps = 3 if QUICK else 10
        many = c["bio"] * reps
        s = Coprocess(binary, "--cache-mb", "0")
        s.call({"op": "unlock", "name": "diary", "cipher": "biographer", "secret": pw})
        big_id = 10_000
        s.send(count_req(many, [TERM], key="diary", id=big_id))
        small_req = count_req([c["bio"][0]], [TERM], key="diary", id=10_001)
        t_start = time.perf_counter()
        sent_small = None
        small_latency = None
        big_done = None
        big_files = 0
        small_at = None
        while big_done is None or small_latency is None:
            r = s.frame()
            if r.get("id") == 10_001 and r.get("type") == "done":
                small_latency = time.perf_counter() - sent_small
            elif r.get("id") == big_id and r.get("type") == "file":
                big_files += 1
            elif r.get("id") == big_id and r.get("type") == "files":
                big_files += len(r["results"])
            elif r.get("id") == big_id and r.get("type") == "done":
                big_done = time.perf_counter() - t_start
            # Once the big request is well under way (and far from its end), the small one.
            if sent_small is None and big_files >= min(1000, len(many) // 10):
                sent_small = time.perf_counter()
                small_at = big_files
                s.send(small_req)
        rss = s.peak_rss_mb()
        s.close()
        if want(7):
            if small_at is None or big_files - small_at < len(many) // 4:
                log(f"warning: the small request went in late ({small_at} of {len(many)} results read)")
            table.add(7, f"1-file request during a {len(many):,}-file one", ms(small_latency),
                      f"big one: {big_done:.1f} s", "-", "<= 50 ms", small_latency <= 0.05)
        if want(8):
            table.add(8, f"peak RSS, {len(many):,}-file request, cache off", f"{rss:.0f} MB", "-", "-",
                      "<= 150 MB", rss <= 150)

    # 8b. One big plaintext file.
    if want(8):
        rg_big_t, rg_big = best_time(lambda: rg_count([c["big"]], TERM), repeat=3)
        s = Coprocess(binary)
        t_big, (_, done, _) = best_time(lambda: timed_call(s, (count_req([c["big"]], [TERM]))), repeat=3)
        rss = s.peak_rss_mb()
        s.close()
        check(done, rg_big, "big file")
        size = os.path.getsize(c["big"])
        table.add(8, f"peak RSS, one {size >> 20} MiB plaintext file", f"{rss:.0f} MB", "-", "-", "<= 100 MB",
                  rss <= 100)
        table.add("8'", f"time, one {size >> 20} MiB plaintext file", ms(t_big), f"rg {ms(rg_big_t)}",
                  f"{t_big / rg_big_t:.2f}x", "(context)", True)

    # 13. Regular expressions: plain and biographer warm vs rg, per pattern; all five in one request.
    if want(13):
        s = Coprocess(binary)
        s.call({"op": "unlock", "name": "diary", "cipher": "biographer", "secret": pw})
        slowest = 0.0
        for p in PATTERNS:
            plain_req = count_req(c["plain"], [p], regex=True)
            bio_req = count_req(c["bio"], [p], regex=True, key="diary")
            s.call(plain_req)
            s.call(bio_req)
            (tp, (_, done, _)), (tb, (_, done_b, _)), (tr, rg_n) = best_alternating([
                lambda: timed_call(s, plain_req), lambda: timed_call(s, bio_req),
                lambda: rg_regex(c["plain_dir"], p)])
            check(done, rg_n, f"regex {p}")
            check(done_b, rg_n, f"regex {p} (biographer)")
            slowest = max(slowest, tp)
            table.add(13, f"regex plain {p} ({rg_n} matches)", ms(tp), f"rg {ms(tr)}", f"{tp / tr:.2f}x",
                      "<= 1.0x rg", tp <= tr)
            table.add("13'", f"  the same, biographer warm", ms(tb), f"rg {ms(tr)}", f"{tb / tr:.2f}x",
                      "<= 1.0x rg", tb <= tr)
        all_req = count_req(c["plain"], PATTERNS, regex=True)
        s.call(all_req)
        t_all, _ = best_time(lambda: timed_call(s, all_req))
        table.add("13\"", "regex plain, all five patterns in one request", ms(t_all), f"slowest alone {ms(slowest)}",
                  f"{t_all / slowest:.2f}x", "<= 2x", t_all <= 2 * slowest)
        s.close()

    # 9. Fernet and age against Python loops of the same library calls.
    if want(9):
        from cryptography.fernet import Fernet
        fkey = corpus.FERNET_KEY
        def py_fernet():
            f = Fernet(fkey)
            n = 0
            for p in c["fernet"]:
                with open(p, "rb") as fh:
                    n += f.decrypt(fh.read()).count(TERM.encode())
            return n
        t_pyf, n_pyf = best_time(lambda: timed(py_fernet), repeat=3)
        ident = open(c["age_identity"]).read()
        age_subset = c["age"][: (100 if QUICK else 400)]
        def age_cli():
            n = 0
            for p in age_subset:
                out = subprocess.run(["age", "-d", "-i", c["age_identity"], p], capture_output=True, check=True).stdout
                n += out.count(TERM.encode())
            return n
        t_age_sub, _ = timed(age_cli)
        t_age = t_age_sub * n_stories / len(age_subset)
        import pyrage
        pid = pyrage.x25519.Identity.from_str(ident.strip())
        def py_age():
            n = 0
            for p in c["age"]:
                with open(p, "rb") as fh:
                    n += pyrage.decrypt(fh.read(), [pid]).count(TERM.encode())
            return n
        t_pyrage, n_pyrage = best_time(lambda: timed(py_age), repeat=3)
        for name, files, secret, peers, expect in (
            ("fernet", c["fernet"], fkey.decode(), [(t_pyf, "Python Fernet loop")], n_pyf),
            ("age", c["age"], ident, [(t_age, f"age -d per file (timed on {len(age_subset)}, scaled)"),
                                      (t_pyrage, "Python pyrage loop")], n_pyrage),
        ):
            for label, cache in (("cold", "0"), ("warm", "256")):
                s = Coprocess(binary, "--cache-mb", cache)
                s.call({"op": "unlock", "name": "k", "cipher": name, "secret": secret})
                req = count_req(files, [TERM], key="k")
                s.call(req)
                t, (_, done, _) = best_time(lambda: timed_call(s, req))
                check(done, expect, name)
                s.close()
                goal = 1.8 if label == "cold" else 10
                for peer_t, peer_name in peers:
                    sp = peer_t / t
                    table.add(9, f"{name} {label} vs {peer_name}", ms(t), f"{ms(peer_t)}", f"{sp:.1f}x faster",
                              f">= {goal}x", sp >= goal)


    # 10. OpenPGP: a pass-style store against `pass grep`'s gpg loop; one big message's RSS.
    if want(10):
        import openpgp_bench
        pg = openpgp_bench.ensure(os.path.join(HERE, "corpus", "openpgp"), big_bytes, log)
        entries = pg["entries"]
        secret = {"keys": open(pg["keys"], "rb").read(), "passphrase": openpgp_bench.PASSPHRASE}
        sample = entries[: (20 if QUICK else 100)]
        t_gpg_sample, _ = openpgp_bench.gpg_loop(pg["home"], sample, TERM)
        t_gpg = t_gpg_sample * len(entries) / len(sample)
        # Cold: the plaintext cache off, a new coprocess (fresh session-key cache) for each run.
        def cold_run(request):
            def once():
                sv = Coprocess(binary, "--cache-mb", "0")
                sv.call({"op": "unlock", "name": "pass", "cipher": "openpgp", "secret": secret})
                r = sv.call(request)
                sv.close()
                return r[0], r
            return best_time(once, repeat=3)
        t_cold, (_, done_cold, _) = cold_run(count_req(entries, [TERM], key="pass"))
        # Repeat: the same coprocess again, plaintext cache off (session keys cached).
        s = Coprocess(binary, "--cache-mb", "0")
        s.call({"op": "unlock", "name": "pass", "cipher": "openpgp", "secret": secret})
        req = count_req(entries, [TERM], key="pass")
        s.call(req)
        t_rep, (_, done_rep, _) = best_time(lambda: timed_call(s, req))
        s.close()
        # Warm: the plaintext cache on.
        s = Coprocess(binary)
        s.call({"op": "unlock", "name": "pass", "cipher": "openpgp", "secret": secret})
        s.call(req)
        t_warm, (_, done_warm, _) = best_time(lambda: timed_call(s, req))
        s.close()
        expect = done_cold["counts"][0]
        for d, what in ((done_rep, "repeat"), (done_warm, "warm")):
            check(d, expect, f"openpgp {what}")
        n = len(entries)
        sp = t_gpg / t_cold
        gpg_name = f"gpg --decrypt per file (timed on {len(sample)}, scaled)"
        table.add(10, f"openpgp pass store, {n} entries, cold, {t_cold / n * 1e6:.0f} us/file vs "
                      f"{t_gpg / n * 1e3:.0f} ms/file", ms(t_cold), f"{t_gpg:.1f} s", f"{sp:.0f}x faster",
                  ">= 50x", sp >= 50)
        sp = t_cold / t_rep
        table.add(10, f"  repeat, plaintext cache off (session keys cached), {t_rep / n * 1e6:.0f} us/file",
                  ms(t_rep), f"cold {ms(t_cold)}", f"{sp:.1f}x faster", ">= 2x", sp >= 2)
        sp = t_gpg / t_warm
        table.add(10, "  warm (plaintext cache)", ms(t_warm), f"{t_gpg:.1f} s", f"{sp:.0f}x faster", ">= 1000x",
                  sp >= 1000)
        # The same with what gpg writes by default: compressed, half of it armored.
        compressed = openpgp_bench.ensure_compressed(os.path.join(HERE, "corpus", "openpgp"), log)
        creq = count_req(compressed, [TERM], key="pass")
        t_ccold, (_, done_ccold, _) = cold_run(creq)
        s = Coprocess(binary, "--cache-mb", "0")
        s.call({"op": "unlock", "name": "pass", "cipher": "openpgp", "secret": secret})
        s.call(creq)
        t_crep, (_, done_crep, _) = best_time(lambda: timed_call(s, creq))
        s.close()
        check(done_crep, done_ccold["counts"][0], "openpgp compressed repeat")
        nc = len(compressed)
        csample = compressed[:20]
        t_gpg_c = openpgp_bench.gpg_loop(pg["home"], csample, TERM)[0] * nc / len(csample)
        sp = t_gpg_c / t_ccold
        table.add(10, f"openpgp compressed store (zlib, half armored), {nc} entries, cold, "
                      f"{t_ccold / nc * 1e6:.0f} us/file", ms(t_ccold), f"{t_gpg_c:.1f} s", f"{sp:.0f}x faster",
                  ">= 50x", sp >= 50)
        sp = t_ccold / t_crep
        table.add(10, f"  repeat, plaintext cache off (session keys cached), {t_crep / nc * 1e6:.0f} us/file",
                  ms(t_crep), f"cold {ms(t_ccold)}", f"{sp:.1f}x faster", ">= 2x", sp >= 2)
        if os.path.exists(pg["big"]):
            s = Coprocess(binary, "--cache-mb", "0")
            s.call({"op": "unlock", "name": "pass", "cipher": "openpgp", "secret": secret})
            t_big, (_, done_big, _) = timed_call(s, count_req([pg["big"]], [TERM], key="pass"))
            rss = s.peak_rss_mb()
            s.close()
            check(done_big, pg["big_count"], "openpgp big message")
            size = os.path.getsize(pg["big"])
            table.add(10, f"openpgp, one {size >> 20} MiB message: peak RSS ({size / t_big / 1e6:.0f} MB/s)",
                      f"{rss:.0f} MB", "-", "-", "< 100 MB", rss < 100)

    # 14. Round two: one module per target in Benchmarks/round2/ (`--only 14` or `--only 14.N`).
    ctx = round2.Context(
        binary=binary, corpus=c, quick=QUICK, repeat=REPEAT, cores=cores, limits=ceilings, table=table,
        log=log, want=want, Coprocess=Coprocess, best_time=best_time, best_alternating=best_alternating,
        timed=timed, rg_count=rg_count, count_req=count_req, timed_call=timed_call, check=check, ms=ms,
        term=TERM, terms16=TERMS16, here=HERE, big_bytes=big_bytes,
    )
    round2.run_all(ctx)

    print()
    print(f"cryptcount benchmarks ({'quick' if QUICK else 'full'} run, {time.time() - started:.0f} s, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    for m in machine():
        print(m)
    print(f"This machine's limits, one core, 16 KiB blocks: {limits.describe(ceilings)}")
    print(f"Load average (1 min) at the start {load_start:.2f}, at the end {os.getloadavg()[0]:.2f} "
          f"(other work on the machine slows cryptcount and its peers alike; see row 5')")
    print(f"Corpus: {n_stories} stories, {plain_bytes / 1e6:.1f} MB of text, {bio_bytes / 1e6:.0f} MB biographer; "
          f"term {TERM!r} ({rg_total} matches); best of {REPEAT} runs, taken in turn with the peer "
          f"on the same row; "
          f"cryptcount requests with \"batch\": {BATCH}, \"compact\": {str(COMPACT).lower()}; files in the page cache.")
    print()
    table.print()


if __name__ == "__main__":
    main()
