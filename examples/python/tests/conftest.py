"""Shared fixtures. Every test that talks to a coprocess runs the real `cryptcount` binary."""

from __future__ import annotations

import os
import random
import shutil
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

# Test this checkout's package, installed or not (no pytest config here: this suite also runs
# beside others from the repository root).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _cc_support import make_text  # noqa: E402
from cryptcount import Coprocess, biographer  # noqa: E402
import cryptcount._session as _session  # noqa: E402

# In this repository, every response the driver reads in these tests is checked against
# protocol/schema.json (Tests/Golden/schema_check.py): a response field the schema does not
# allow fails the test that received it. Outside the repository (the package copied alone)
# there is no schema to check against.
_SCHEMA_CHECK = Path(__file__).resolve().parents[3] / "Tests" / "Golden" / "schema_check.py"
if _SCHEMA_CHECK.is_file():
    sys.path.insert(0, str(_SCHEMA_CHECK.parent))
    from schema_check import response_errors  # noqa: E402
else:
    response_errors = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "foreign_server: the test talks to a fake server (no schema check)")


@pytest.fixture(autouse=True)
def responses_match_schema(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[None]:
    """Wraps the driver's frame decoder; the test fails if any response broke the schema.

    (Checked on the reader thread, reported at teardown: an exception there would only
    kill the coprocess and hide the cause.)
    """
    if response_errors is None or request.node.get_closest_marker("foreign_server"):
        yield
        return
    problems: List[str] = []
    unpack = _session.unpack

    def checked(payload: bytes) -> object:
        value = unpack(payload)
        try:
            problems.extend(response_errors(value))
        except Exception as exc:  # never let the check itself break the reader
            problems.append(f"schema check failed: {exc!r}")
        return value

    monkeypatch.setattr(_session, "unpack", checked)
    yield
    assert not problems, "responses that do not match protocol/schema.json:\n" + "\n".join(problems[:5])

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
    """800 biographer files (~80 KB each), each listed 10 times: enough work that a query is
    still running when cancelled. Not fewer: the 800 alone took a release build 16-23 ms, which
    a test thread waiting for the GIL on a busy machine could miss."""
    root = tmp_path_factory.mktemp("big")
    rng = random.Random(11)
    texts = [make_text(rng, 900) for _ in range(16)]
    paths = []
    for i in range(800):
        p = root / f"story-{i:04d}.bio"
        p.write_bytes(biographer.encrypt(texts[i % 16], "pw", rng=rng))
        paths.append(p)
    return paths * 10
