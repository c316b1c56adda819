"""One big age file (1 GiB; 256 MiB quick): 2 workers share its STREAM chunks vs 1 worker.

The age file is made from the corpus's big plaintext by the real `age` tool (an X25519
identity), under Benchmarks/corpus/ (not in git), once. Rows: the speed-up of `--workers 2` over
`--workers 1` (alternating, best of N; plaintext cache off), counts equal to rg on the plaintext,
then CPU time and run-queue wait per request (schedstat): on a shared machine the second worker
only helps if a second core is free, which the waiting time shows.
"""

import os
import shutil
import subprocess

import corpus


def ensure_age(ctx):
    big = ctx.corpus["big"]
    root = os.path.dirname(big)
    ident = os.path.join(root, "big-age-identity.txt")
    out = os.path.splitext(big)[0] + ".age"
    if not os.path.exists(ident):
        subprocess.run(["age-keygen", "-o", ident], check=True, capture_output=True)
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(big):
        ctx.log(f"encrypting {os.path.basename(big)} with age")
        recipient = subprocess.run(["age-keygen", "-y", ident], check=True, capture_output=True,
                                   text=True).stdout.strip()
        subprocess.run(["age", "-r", recipient, "-o", out + ".tmp", big], check=True)
        os.replace(out + ".tmp", out)
    with open(ident) as f:
        return out, f.read()


def run(ctx):
    if shutil.which("age") is None or shutil.which("age-keygen") is None:
        ctx.log("target 14.3 skipped: age is not installed")
        return
    path, identity = ensure_age(ctx)
    size = os.path.getsize(path)
    corpus.fresh_in_page_cache(path)
    _, rg_total = ctx.rg_count([ctx.corpus["big"]], ctx.term)
    one = ctx.Coprocess(ctx.binary, "--workers", "1", "--cache-mb", "0")
    two = ctx.Coprocess(ctx.binary, "--workers", "2", "--cache-mb", "0")
    req = ctx.count_req([path], [ctx.term], cipher="age", secret=identity)
    for s in (one, two):
        s.call(req)
    before = [s.sched_ns() for s in (one, two)]
    (t1, (_, done1, _)), (t2, (_, done2, _)) = ctx.best_alternating(
        [lambda: ctx.timed_call(one, req), lambda: ctx.timed_call(two, req)], repeat=ctx.repeat)
    after = [s.sched_ns() for s in (one, two)]
    rss = two.peak_rss_mb()
    one.close()
    two.close()
    ctx.check(done1, rg_total, "age, 1 worker")
    ctx.check(done2, rg_total, "age, 2 workers")
    speedup = t1 / t2
    ctx.table.add(
        "14.3", f"one {size >> 20} MiB age file, 2 workers vs 1 ({size / t2 / 1e6:.0f} MB/s)", ctx.ms(t2),
        f"1 worker {ctx.ms(t1)}", f"{speedup:.2f}x", ">= 1.6x", speedup >= 1.6)
    for label, (r0, w0), (r1, w1) in (("1 worker", before[0], after[0]), ("2 workers", before[1], after[1])):
        ctx.table.add(
            "14.3'", f"age {size >> 20} MiB, {label}: CPU / run-queue wait per request",
            ctx.ms((r1 - r0) / ctx.repeat / 1e9), f"waited {ctx.ms((w1 - w0) / ctx.repeat / 1e9)}", "-",
            "(context)", True)
    ctx.table.add(
        "14.3\"", f"peak RSS, one {size >> 20} MiB age file, 2 workers", f"{rss:.0f} MB", "-", "-", "<= 100 MB",
        rss <= 100)
