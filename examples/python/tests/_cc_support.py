"""Helpers shared by the driver's tests (kept out of conftest.py so test modules can import them)."""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Callable, Dict, List

from cryptcount import Coprocess

WORDS = (
    "rain sun river morning letter garden train window coffee night story friend city road music "
    "winter summer quiet bright old new small house door light walk talk sea cat dog the a of and"
).split()


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
