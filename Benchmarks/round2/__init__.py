"""Issue 14's targets, one module each: `t<N>_<what>.py` with a `run(ctx)` that adds its rows
to `ctx.table`. run.py calls every module whose target is wanted (`--only 14` runs them all,
`--only 14.3` one of them), after the first-round targets, with the helpers in `Context`."""

import importlib
import os
import pkgutil
import re
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Context:
    binary: str
    corpus: dict
    quick: bool
    repeat: int
    cores: int
    limits: dict  # this machine's ceilings in bytes/s (limits.py); a value may be None
    table: Any
    log: Callable
    want: Callable
    Coprocess: type
    best_time: Callable
    best_alternating: Callable
    timed: Callable
    rg_count: Callable
    count_req: Callable
    timed_call: Callable
    check: Callable
    ms: Callable
    term: str
    terms16: list
    here: str
    big_bytes: int


def modules():
    """(target number, module) for each `t<N>_*.py` here, in target order."""
    found = []
    for info in pkgutil.iter_modules([os.path.dirname(__file__)]):
        m = re.match(r"t(\d+)_", info.name)
        if m:
            found.append((int(m.group(1)), info.name))
    return [(n, importlib.import_module(f"round2.{name}")) for n, name in sorted(found)]


def run_all(ctx):
    for n, module in modules():
        if ctx.want("14") or ctx.want(f"14.{n}"):
            ctx.log(f"target 14.{n}: {module.__doc__.strip().splitlines()[0] if module.__doc__ else ''}")
            module.run(ctx)
