"""Start-up of the one-shot `cryptcount count` (issue 14, target 7): the common command lines
skip swift-argument-parser's reflection (CountCommand.quick) and must agree with it byte for
byte; one worker runs on the main thread and must agree with the pool."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

BIN = os.environ.get("CRYPTCOUNT_BIN", "cryptcount")
TEXT = b"the rain in spain\nstays mainly in the plain\nthe end\n"


QUICK_SHAPES = [
    ["-t", "the", "{f}"],
    ["--term", "the", "-t", "rain", "{f}", "{g}"],
    ["{f}", "-t", "the", "-i", "-w", "--json"],
    ["-e", "r[a-z]+n", "-t", "the", "--words", "{f}"],
    ["--regexp", "the", "--ignore-case", "--whole-word", "{d}"],
    ["-t", "the", "-L", "--follow", "{d}"],  # a flag twice (two spellings): the parser decides
    ["-t", "the", "{f}", "{missing}"],
    ["-t", "the", "--json", "{d}", "{missing}"],
    ["-e", "(", "{f}"],  # a bad pattern: the usage error of the engine
    ["--words", "{d}"],
]


@pytest.mark.parametrize("shape", QUICK_SHAPES, ids=lambda s: " ".join(s))
def test_quick_parse_agrees_with_the_parser(tmp_path: Path, shape):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_bytes(TEXT)
    (d / "b.txt").write_bytes(b"The rain, THE rain. Rainy then.\n")
    names = {"f": str(d / "a.txt"), "g": str(d / "b.txt"), "d": str(d), "missing": str(tmp_path / "nope")}
    args = [a.format(**names) for a in shape]
    quick = subprocess.run([BIN, "count", *args], capture_output=True, timeout=60)
    parsed = subprocess.run([BIN, "count", "--workers", "2", *args], capture_output=True, timeout=60)
    assert (quick.returncode, quick.stdout, quick.stderr) == (parsed.returncode, parsed.stdout, parsed.stderr)
    assert quick.stdout or quick.stderr


def test_usage_errors_still_come_from_the_parser(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_bytes(TEXT)
    for args, message in [
        (["-t", "the"], b"Missing expected argument"),
        (["-t", "", str(f)], b"a term must not be empty"),
        (["-t", "the", "--bogus", str(f)], b"Unknown option '--bogus'"),
        (["-t", str(f)], b"Missing expected argument"),
    ]:
        r = subprocess.run([BIN, "count", *args], capture_output=True, timeout=60)
        assert r.returncode == 1, (args, r)
        assert message in r.stderr and b"Usage: cryptcount count" in r.stderr, (args, r.stderr)
    r = subprocess.run([BIN, "count", "--help"], capture_output=True, timeout=60)
    assert r.returncode == 0 and b"USAGE: cryptcount count" in r.stdout, r


def test_one_worker_on_the_main_thread_agrees_with_the_pool(tmp_path: Path):
    """With one worker (--workers 1, or one small file) `count` runs the files on its own thread
    (WorkerPool.runHereUntilIdle) instead of starting a worker: same output, same order, same
    failures as the pool's threads."""
    d = tmp_path / "d"
    d.mkdir()
    for i in range(40):
        (d / f"{i:02d}.txt").write_bytes(TEXT * (i + 1))
    (d / "unreadable").mkdir()
    os.chmod(d / "unreadable", 0)
    for extra in ([], ["--json"], ["-e", "r[a-z]+n", "--words"]):
        args = ["count", "-t", "the", *extra, str(d), str(tmp_path / "missing")]
        one = subprocess.run([BIN, *args, "--workers", "1"], capture_output=True, timeout=60)
        pool = subprocess.run([BIN, *args, "--workers", "3"], capture_output=True, timeout=60)
        assert (one.returncode, one.stdout, one.stderr) == (pool.returncode, pool.stdout, pool.stderr)
        assert one.returncode == 2 and one.stdout.count(b"\n") >= 41, one
