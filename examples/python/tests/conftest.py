"""Shared fixtures. Every test that talks to a coprocess runs the real `cryptcount` binary."""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest

from cryptcount import Coprocess, biographer

WORDS = (
    "rain sun river morning letter garden train window coffee night story friend city road music "
    "winter summer quiet bright old new small house door light walk talk sea cat dog the a of and"
).split()


def _find_binary() -> str:
    env = os.environ.get("CRYPTCOUNT_BIN")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        pytest.skip(f"CRYPTCOUNT_BIN={env!r} is not an executable file: build it (swift build -c release)")
    found = shutil.which("cryptcount")
    if found:
        return found
    pytest.skip(
        "no cryptcount binary: set CRYPTCOUNT_BIN to the built binary "
        "(e.g. CRYPTCOUNT_BIN=$PWD/.build/release/cryptcount) or put cryptcount on PATH"
    )


@pytest.fixture(scope="session")
def binary() -> str:
    return _find_binary()


@pytest.fixture
def cc(binary: str) -> Iterator[Coprocess]:
    with Coprocess(binary) as c:
        yield c


def make_text(rng: random.Random, n_words: int) -> bytes:
    lines = []
    line: List[str] = []
    for _ in range(n_words):
        line.append(rng.choice(WORDS))
        if len(line) >= rng.randint(6, 14):
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def plain_corpus(tmp_path: Path) -> Dict[Path, bytes]:
    """Twenty small plaintext files with varied content."""
    rng = random.Random(7)
    files = {}
    for i in range(20):
        p = tmp_path / f"plain-{i:02d}.txt"
        data = make_text(rng, rng.randint(0, 300))
        p.write_bytes(data)
        files[p] = data
    return files


@pytest.fixture(scope="session")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    """Many biographer files (~80 KB each): enough work that a query is still running when cancelled."""
    root = tmp_path_factory.mktemp("big")
    rng = random.Random(11)
    texts = [make_text(rng, 900) for _ in range(16)]
    paths = []
    for i in range(800):
        p = root / f"story-{i:04d}.bio"
        p.write_bytes(biographer.encrypt(texts[i % 16], "pw", rng=rng))
        paths.append(p)
    return paths


def wait_idle(cc: Coprocess, timeout: float = 20.0) -> Dict[str, object]:
    """Stats once no count request is in flight (bounded, never hangs)."""
    deadline = time.monotonic() + timeout
    while True:
        s = cc.stats()
        if int(s.get("in_flight", 0)) == 0 or time.monotonic() > deadline:  # type: ignore[arg-type]
            return s
        time.sleep(0.02)


def freeze(pid: int) -> Callable[[], None]:
    """SIGSTOP a process so calls to it wait; returns a function that SIGKILLs it."""
    os.kill(pid, signal.SIGSTOP)

    def kill() -> None:
        os.kill(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGCONT)

    return kill
