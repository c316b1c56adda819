"""One-shot CLI: `cryptcount count -t the FILE` on one small file <= 1.5x `rg -c the FILE`.

Whole processes, as a shell runs them: posix_spawn, then wait4, stdout to /dev/null, timed in
this process; cryptcount and rg in turn (alternating, so that both see the same machine), best
of N. Second figure, less sensitive to load: the child's CPU time (user + system, from wait4's
rusage), best of N. Rows: the binary given (--bin), the `make dist` executable (Swift runtime
linked statically, what users install) when it has been built, and a breakdown: the process
start alone (`cryptcount --version`: loader, runtime, argument parsing, no engine).
"""

import os
import re
import shutil
import subprocess
import time

RATIO_GOAL = 1.5


def _spawn(argv):
    """(wall seconds, CPU seconds) of one whole process."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed with status {status}")
    return wall, usage.ru_utime + usage.ru_stime


def _best(argvs, rounds):
    """Each argv run in turn, `rounds` times: [(best wall, best CPU)]."""
    best = [(float("inf"), float("inf"))] * len(argvs)
    for _ in range(rounds):
        for i, argv in enumerate(argvs):
            w, c = _spawn(argv)
            best[i] = (min(best[i][0], w), min(best[i][1], c))
    return best


def _ms(t):
    return f"{t * 1000:.2f} ms"


def _dist_binary(ctx):
    root = os.path.dirname(ctx.here)
    for p in (os.path.join(root, "dist", "cryptcount"), os.path.join(root, ".build-dist", "release", "cryptcount")):
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def run(ctx):
    term = "the"
    story = ctx.corpus["plain"][0]
    rg = shutil.which("rg")
    if rg is None:
        ctx.log("14.7: rg is not installed: skipped")
        return
    rg_argv = [rg, "-c", term, story]
    expect = open(story, "rb").read().count(term.encode())
    binaries = [("--bin", ctx.binary)]
    dist = _dist_binary(ctx)
    if dist and os.path.realpath(dist) != os.path.realpath(ctx.binary):
        binaries.append(("dist", dist))
    for label, binary in binaries:
        out = subprocess.run([binary, "count", "-t", term, story], capture_output=True, text=True, check=True).stdout
        got = int(re.search(r"^TOTAL\s+(\d+)", out, re.M).group(1))
        if got != expect:
            raise SystemExit(f"14.7: {binary} counted {got} of {term!r}, the file has {expect}")
    rounds = 20 if ctx.quick else 60
    argvs = [rg_argv]
    for _, binary in binaries:
        argvs += [[binary, "count", "-t", term, story], [binary, "--version"]]
    load = os.getloadavg()[0]
    best = _best(argvs, rounds)
    rg_wall, rg_cpu = best[0]
    size = os.path.getsize(story)
    for k, (label, binary) in enumerate(binaries):
        (wall, cpu), (v_wall, v_cpu) = best[1 + 2 * k], best[2 + 2 * k]
        name = "release" if label == "--bin" else "dist (static Swift)"
        ratio = wall / rg_wall
        ctx.table.add(7 if label == "--bin" else "7'", f"one-shot count, 1 file ({size} B), {name}, whole process",
                      _ms(wall), f"rg -c {_ms(rg_wall)}", f"{ratio:.2f}x", f"<= {RATIO_GOAL}x rg",
                      ratio <= RATIO_GOAL)
        ctx.table.add("7'", f"  the same, CPU time (user+sys; load {load:.1f})", _ms(cpu),
                      f"rg -c {_ms(rg_cpu)}", f"{cpu / rg_cpu:.2f}x", "(context)", True)
        ctx.table.add("7'", f"  start-up alone: `cryptcount --version`, {name}", _ms(v_wall),
                      f"CPU {_ms(v_cpu)}", f"{v_wall / rg_wall:.2f}x rg", "(context)", True)
