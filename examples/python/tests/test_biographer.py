"""The pure-Python biographer cipher: seed vectors, and agreement with the coprocess."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, List

import pytest

from cryptcount import Coprocess, biographer

REPO_ROOT = Path(__file__).resolve().parents[3]


def seed_vectors() -> List[Any]:
    candidates = []
    if os.environ.get("CRYPTCOUNT_VECTORS"):
        candidates.append(Path(os.environ["CRYPTCOUNT_VECTORS"]).parent / "seed")
    candidates.append(REPO_ROOT.parent / "shared" / "seed")
    for c in candidates:
        f = c / "biographer-vectors.json"
        if f.is_file():
            return json.loads(f.read_text())  # type: ignore[no-any-return]
    pytest.skip(f"seed vectors not found (looked in {', '.join(map(str, candidates))})")


def test_seed_vectors_decrypt() -> None:
    vectors = seed_vectors()
    checked = 0
    for v in vectors:
        data = bytes.fromhex(v["ciphertext_hex"])
        decrypt = biographer.decrypt if v["cipher"] == "biographer" else biographer.decrypt_v0
        if v.get("expect") == "decrypt_failed":
            with pytest.raises(biographer.DecryptError) as e:
                decrypt(data, v["password"])
            assert e.value.kind == "decrypt_failed"
            continue
        plain = decrypt(data, v["password"])
        assert plain == v["plaintext"].encode()
        if v["cipher"] == "biographer":
            assert biographer.decrypt_seed_style(data, v["password"]) == plain
            # Re-encrypting with the file's own iv gives the file back.
            pw = v["password"].encode()
            amount = sum(pw.hex().encode()) % 256
            iv = bytes(((data[i] ^ pw[i % len(pw)]) - amount) % 256 for i in range(8))
            assert biographer.encrypt(plain, pw, iv=iv) == data
        else:
            assert biographer.encrypt_v0(plain, v["password"]) == data
        checked += 1
    assert checked >= 4


def test_round_trip_and_errors() -> None:
    rng = random.Random(3)
    for n in (0, 1, 2, 15, 16, 17, 1000):
        plain = bytes(rng.randrange(256) for _ in range(n))
        for pw in ("hunter2", "correct horse \u2603", b"\xff\x00raw"):
            c = biographer.encrypt(plain, pw, rng=rng)
            assert len(c) == 8 + 16 * n
            pwb = pw.encode() if isinstance(pw, str) else pw
            amount = sum(pwb.hex().encode()) % 256
            iv = [((c[i] ^ pwb[i % len(pwb)]) - amount) % 256 for i in range(8)]
            assert all(1 <= b <= 254 for b in iv)  # as the seed's writer chose them
            assert biographer.decrypt(c, pw) == plain
            assert biographer.decrypt_seed_style(c, pw) == plain
            assert biographer.decrypt_v0(biographer.encrypt_v0(plain, pw), pw) == plain
    with pytest.raises(biographer.DecryptError) as e:
        biographer.decrypt(b"short", "pw")
    assert e.value.kind == "bad_format"
    with pytest.raises(biographer.DecryptError) as e:
        biographer.decrypt(biographer.encrypt(b"some text here", "a"), "b")
    assert e.value.kind == "decrypt_failed"
    with pytest.raises(ValueError):
        biographer.encrypt(b"x", "")


def test_the_coprocess_reads_what_python_writes(cc: Coprocess, tmp_path: Path) -> None:
    rng = random.Random(5)
    words = ["caf\u00e9", "rain", "\U0001f642", "the", "Dear", "diary"]
    cases = []
    for i in range(30):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 200))).encode()
        pw = rng.choice(["hunter2", "correct horse \u2603 battery", "p"])
        p = tmp_path / f"{i}.bio"
        p.write_bytes(biographer.encrypt(text, pw, rng=rng))
        v0 = tmp_path / f"{i}.bio0"
        v0.write_bytes(biographer.encrypt_v0(text, pw))
        cases.append((p, v0, pw, text))
    terms = ["rain", "caf\u00e9", "\U0001f642"]
    for p, v0, pw, text in cases:
        want = [text.count(t.encode()) for t in terms]
        for path, cipher in ((p, "biographer"), (v0, "biographer-v0")):
            (r,) = cc.count([path], terms=terms, cipher=cipher, secret=pw, words=True)
            assert r.error is None, r.error
            assert r.counts == want and r.bytes == len(text) and r.words == len(text.split())
