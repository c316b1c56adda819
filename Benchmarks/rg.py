"""ripgrep as a user runs it per query: one process, counting matches."""

import subprocess
import time


def timed_count(args, paths_or_dir):
    """`rg --count-matches ARGS PATHS`: (seconds, total matches over all files)."""
    cmd = ["rg", "--no-config", "--no-ignore", "--count-matches", *args]
    cmd += paths_or_dir if isinstance(paths_or_dir, list) else [paths_or_dir]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, check=False).stdout
    t = time.perf_counter() - t0
    # "path:n" per file, or just "n" for a single file.
    return t, sum(int(line.rsplit(b":", 1)[-1]) for line in out.splitlines() if line)
