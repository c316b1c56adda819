"""One big plaintext file (1 GiB; 256 MiB quick) vs rg: split into ranges for the idle workers.

Rows: wall time against `rg --count-matches -F` on the same file (alternating, best of N), the
peak RSS of the coprocess (<= 100 MB), and its CPU time and run-queue wait (schedstat) for one
request, since the machine may be shared: waiting time says how much the load cost the row.
"""


def run(ctx):
    big = ctx.corpus["big"]
    import os

    size = os.path.getsize(big)
    with open(big, "rb") as f:  # page cache
        while f.read(1 << 24):
            pass
    s = ctx.Coprocess(ctx.binary)
    req = ctx.count_req([big], [ctx.term])
    s.call(req)
    run0, wait0 = s.sched_ns()
    (t, (_, done, _)), (rg_t, rg_total) = ctx.best_alternating(
        [lambda: ctx.timed_call(s, req), lambda: ctx.rg_count([big], ctx.term)], repeat=ctx.repeat)
    run1, wait1 = s.sched_ns()
    rss = s.peak_rss_mb()
    s.close()
    ctx.check(done, rg_total, "big file")
    runs = ctx.repeat
    cpu = (run1 - run0) / runs / 1e9
    waited = (wait1 - wait0) / runs / 1e9
    ctx.table.add(
        "14.2", f"one {size >> 20} MiB plaintext file, 1 term ({size / t / 1e9:.2f} GB/s)", ctx.ms(t),
        f"rg {ctx.ms(rg_t)}", f"{t / rg_t:.2f}x", "<= 0.7x rg", t <= 0.7 * rg_t)
    ctx.table.add(
        "14.2'", f"one {size >> 20} MiB plaintext file: CPU / run-queue wait per request", ctx.ms(cpu),
        f"waited {ctx.ms(waited)}", "-", "(context)", True)
    # A term whose rarest byte is rare ('z'): memchr finds its candidates, as in rg.
    rare = "zeppelin"
    rare_req = ctx.count_req([big], [rare])
    s = ctx.Coprocess(ctx.binary)
    s.call(rare_req)
    (tr, (_, done_r, _)), (rg_tr, rg_rare) = ctx.best_alternating(
        [lambda: ctx.timed_call(s, rare_req), lambda: ctx.rg_count([big], rare)], repeat=ctx.repeat)
    s.close()
    ctx.check(done_r, rg_rare, "big file, rare term")
    ctx.table.add(
        "14.2", f"one {size >> 20} MiB plaintext file, 1 term with a rare byte ({rare!r})", ctx.ms(tr),
        f"rg {ctx.ms(rg_tr)}", f"{tr / rg_tr:.2f}x", "<= 0.7x rg", tr <= 0.7 * rg_tr)
    ctx.table.add(
        "14.2\"", f"peak RSS, one {size >> 20} MiB plaintext file, split", f"{rss:.0f} MB", "-", "-",
        "<= 100 MB", rss <= 100)
