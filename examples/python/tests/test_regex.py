"""`count(..., regex=True)` (issue 13): sync and async, refusals, and streamed formats (age,
openssl, a plaintext file bigger than one read) counting exactly what the whole text holds."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cryptcount import AsyncCoprocess, Coprocess, RequestError

PATTERNS = [r"\b\w+ing\b", r"[A-Z][a-z]+ [A-Z][a-z]+", r"\d{4}-\d{2}-\d{2}", r"(?i)heron|egret|swan",
            r"rain(y|fall|ed)?"]


def python_count(text: bytes, pattern: str) -> int:
    """The same count with Python's re, line by line, on ASCII text (where \\b, \\w, \\d agree)."""
    rx = re.compile(pattern)
    return sum(len(rx.findall(line)) for line in text.decode("ascii").split("\n"))


def story(n_bytes: int, seed: int) -> bytes:
    rng = random.Random(seed)
    words = ("rain rainy rainfall rained singing walking the a of Heron egret SWAN John Smith Mary Jones "
             "2024-01-02 1999-12-31 evening morning").split()
    out = []
    size = 0
    while size < n_bytes:
        w = rng.choice(words) + rng.choice([" ", " ", " ", "\n", ". "])
        out.append(w)
        size += len(w)
    return "".join(out).encode()


def test_sync_async_and_hello(cc: Coprocess, binary: str, tmp_path: Path) -> None:
    assert "regex" in cc.hello()["features"]
    texts = {tmp_path / f"s{i}.txt": story(3000 + 500 * i, i) for i in range(4)}
    for p, t in texts.items():
        p.write_bytes(t)
    paths = list(texts)
    want = {i: [python_count(texts[p], pat) for pat in PATTERNS] for i, p in enumerate(paths)}
    assert all(sum(c[k] for c in want.values()) > 0 for k in range(len(PATTERNS)))
    got = {r.index: r.counts for r in cc.count(paths, terms=PATTERNS, regex=True)}
    assert got == want
    # Without regex=True the same strings are literal terms.
    assert all(r.counts == [0] * len(PATTERNS) for r in cc.count(paths, terms=PATTERNS))

    async def main() -> dict:
        async with AsyncCoprocess(binary) as ac:
            return {r.index: r.counts async for r in ac.count(paths, terms=PATTERNS, regex=True)}

    assert asyncio.run(main()) == want


def test_refusals_name_the_pattern(cc: Coprocess, tmp_path: Path) -> None:
    missing = tmp_path / "never-read.txt"  # a request error comes before any file is touched
    with pytest.raises(RequestError) as e:
        cc.count([missing], terms=["ok", "a*"], regex=True).wait()
    assert e.value.code == "bad_request" and '"terms"[1]' in e.value.message and "empty string" in e.value.message
    with pytest.raises(RequestError) as e:
        cc.count([missing], terms=[r"x{2,1}"], regex=True).wait()
    assert '"terms"[0]' in e.value.message and "at byte 1" in e.value.message


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_streamed_formats_count_as_the_whole_text(cc: Coprocess, tmp_path: Path) -> None:
    pyrage = pytest.importorskip("pyrage")
    text = story(3 << 20, 99)  # several 1 MiB reads: matches straddle the chunk edges
    plain = tmp_path / "big.txt"
    plain.write_bytes(text)
    ident = pyrage.x25519.Identity.generate()
    age_file = tmp_path / "big.age"
    age_file.write_bytes(pyrage.encrypt(text, [ident.to_public()]))
    pw = tmp_path / "pw"
    pw.write_bytes(b"correct horse\n")
    ossl = tmp_path / "big.enc"
    subprocess.run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-salt", "-pass", f"file:{pw}", "-in", str(plain),
                    "-out", str(ossl)], check=True)
    want = [python_count(text, p) for p in PATTERNS]
    assert all(want)
    assert cc.count([plain], terms=PATTERNS, regex=True).results()[0].counts == want
    r = cc.count([age_file], terms=PATTERNS, regex=True, cipher="age", secret=str(ident)).results()[0]
    assert r.counts == want, r
    r = cc.count([ossl], terms=PATTERNS, regex=True, cipher="openssl", secret="correct horse").results()[0]
    assert r.counts == want, r
    # Offsets too: the same in the streamed and the whole-file paths.
    a = cc.count([plain], terms=[r"rain\w*"], regex=True, offsets=True, max_offsets=10**6).results()[0]
    b = cc.count([age_file], terms=[r"rain\w*"], regex=True, offsets=True, max_offsets=10**6, cipher="age",
                 secret=str(ident)).results()[0]
    assert a.offsets == b.offsets and len(a.offsets[0]) == a.counts[0]
    assert a.offsets[0] == [m.start() for m in re.finditer(rb"rain\w*", text)]
