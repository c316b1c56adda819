"""biographer cold, 176 MB, the widest kernel: <= 2.0x rg on the plaintext; each kernel forced.

The coprocesses (cache off, one worker per core) are started with CRYPTCOUNT_KERNEL unset (the
widest kernel this CPU runs, as users get it) and set to each kernel the CPU runs; they and rg
are timed in turn, best of N. "GB/s per core" is the ciphertext over the coprocess's CPU time
per request (schedstat: reading, decrypting and counting), which the load on a shared machine
disturbs less than the wall time; "waiting" is the time its threads were runnable but had no
CPU. rg's CPU time (user + system, getrusage of the finished child) is the peer of that figure."""

import os
import resource

import corpus

KERNELS = ["sse2", "avx2", "avx512"]


def cpu_runs(kernel):
    """Whether this CPU runs the kernel, from /proc/cpuinfo (cryptcount refuses one it cannot)."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return kernel == "sse2"
    return {"sse2": True, "avx2": "avx2" in flags,
            "avx512": {"avx512f", "avx512bw", "avx512vl", "avx512vbmi"} <= flags}[kernel]


def start(ctx, kernel):
    """A coprocess with CRYPTCOUNT_KERNEL=kernel (None: unset)."""
    saved = os.environ.pop("CRYPTCOUNT_KERNEL", None)
    try:
        if kernel:
            os.environ["CRYPTCOUNT_KERNEL"] = kernel
        return ctx.Coprocess(ctx.binary, "--cache-mb", "0", "--workers", str(ctx.cores))
    finally:
        os.environ.pop("CRYPTCOUNT_KERNEL", None)
        if saved is not None:
            os.environ["CRYPTCOUNT_KERNEL"] = saved


def run(ctx):
    c = ctx.corpus
    bio_bytes = sum(os.path.getsize(p) for p in c["bio"])
    kernels = [k for k in KERNELS if cpu_runs(k)]
    for k in KERNELS:
        if k not in kernels:
            ctx.log(f"14.1: skipping the {k} kernel: this CPU does not run it")
    widest = kernels[-1]
    _, rg_total = ctx.rg_count(c["plain_dir"], ctx.term)
    req = ctx.count_req(c["bio"], [ctx.term], key="diary")
    names = [None] + kernels
    servers = [start(ctx, k) for k in names]
    for s in servers:
        s.call({"op": "unlock", "name": "diary", "cipher": "biographer", "secret": corpus.PASSWORD.decode()})
        s.call(req)  # warm: threads, the key's pad, the allocator
    before = [s.sched_ns() for s in servers]
    rg_cpu = []

    def rg():
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = ctx.rg_count(c["plain_dir"], ctx.term)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rg_cpu.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
        return result

    results = ctx.best_alternating([(lambda s: lambda: ctx.timed_call(s, req))(s) for s in servers] + [rg])
    rg_t = results[-1][0]
    figures = []
    for s, b, (t, (_, done, _)) in zip(servers, before, results):
        ctx.check(done, rg_total, "biographer cold (14.1)")
        run_ns, wait_ns = s.sched_ns()
        cpu = (run_ns - b[0]) / ctx.repeat / 1e9
        wait = (wait_ns - b[1]) / ctx.repeat / 1e9
        figures.append((t, cpu, wait))
        s.close()

    t, cpu, wait = figures[0]
    ctx.table.add("14.1", f"biographer cold, {bio_bytes / 1e6:.0f} MB, widest kernel ({widest}), "
                  f"{ctx.cores} workers ({bio_bytes / t / 1e9:.2f} GB/s)", ctx.ms(t), f"rg {ctx.ms(rg_t)}",
                  f"{t / rg_t:.2f}x", "<= 2.0x rg", t <= 2.0 * rg_t)
    ctx.table.add("14.1'", "  the same: CPU time per request (GB/s per core), and time waiting for a CPU",
                  f"{cpu * 1e3:.0f} ms CPU ({bio_bytes / cpu / 1e9:.2f} GB/s)", f"{wait * 1e3:.0f} ms waiting",
                  "-", "(context)", True)
    rg_cpu_t = sum(rg_cpu) / len(rg_cpu)
    ctx.table.add("14.1'", "  the same in CPU time (less disturbed by load): per request vs rg's, mean",
                  f"{cpu * 1e3:.0f} ms CPU", f"rg {rg_cpu_t * 1e3:.0f} ms CPU", f"{cpu / rg_cpu_t:.2f}x",
                  "(context)", True)
    for k, (t, cpu, wait) in zip(kernels, figures[1:]):
        ctx.table.add("14.1'", f"  {k} kernel forced: wall; CPU per request (GB/s per core), waiting",
                      f"{ctx.ms(t)}; {cpu * 1e3:.0f} ms CPU ({bio_bytes / cpu / 1e9:.2f} GB/s)",
                      f"rg {ctx.ms(rg_t)}; {wait * 1e3:.0f} ms waiting", f"{t / rg_t:.2f}x", "(context)", True)
