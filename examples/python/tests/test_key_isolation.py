"""Through the driver: one key never reads plaintext that another key decrypted.

Files made by the real tools (age-keygen and age; Python cryptography's Fernet). The right key
queries first with the plaintext cache on, then a wrong key of the same kind and length, by
inline secret and by unlocked name, on the same coprocess: every wrong-key result is a
`decrypt_failed` error and none is cached.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, List, Tuple

import pytest

from cryptcount import Coprocess, FileResult

TEXT = b"rain over the estuary; rain on the heron\n"


def age_files(tmp_path: Path) -> Tuple[str, str, List[Path]]:
    if not shutil.which("age") or not shutil.which("age-keygen"):
        pytest.skip("age and age-keygen are not installed (apt install age)")
    keys = []
    for name in ("right", "wrong"):
        out = subprocess.run(["age-keygen"], check=True, capture_output=True, text=True).stdout
        keys.append(next(line for line in out.splitlines() if line.startswith("AGE-SECRET-KEY-")))
        (tmp_path / f"{name}.key").write_text(out)
    public = subprocess.run(["age-keygen", "-y", str(tmp_path / "right.key")], check=True, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    files = []
    for i in range(3):
        p = tmp_path / f"n-{i}.age"
        subprocess.run(["age", "-r", public, "-o", str(p)], input=TEXT * (i + 1), check=True)
        files.append(p)
    return keys[0], keys[1], files


def fernet_files(tmp_path: Path) -> Tuple[str, str, List[Path]]:
    fernet = pytest.importorskip("cryptography.fernet", reason="needs the cryptography package")
    right, wrong = fernet.Fernet.generate_key(), fernet.Fernet.generate_key()
    files = []
    for i in range(3):
        p = tmp_path / f"n-{i}.token"
        p.write_bytes(fernet.Fernet(right).encrypt(TEXT * (i + 1)))
        files.append(p)
    return right.decode(), wrong.decode(), files


def assert_wrong(results: List[FileResult]) -> None:
    assert results
    for r in results:
        assert not r.cached, f"a wrong key read cached plaintext: {r}"
        assert r.error is not None and r.error.code == "decrypt_failed", r


@pytest.mark.parametrize("make,cipher", [(age_files, "age"), (fernet_files, "fernet")])
@pytest.mark.parametrize("right_by,wrong_by", [("inline", "inline"), ("name", "inline"), ("name", "name")])
def test_wrong_key_never_reads_the_right_keys_cache(
    cc: Coprocess, tmp_path: Path, make: Any, cipher: str, right_by: str, wrong_by: str
) -> None:
    right, wrong, files = make(tmp_path)

    def query(secret: str, by: str, name: str) -> List[FileResult]:
        if by == "inline":
            return list(cc.count(files, ["rain"], cipher=cipher, secret=secret))
        cc.unlock(name, cipher=cipher, secret=secret)
        return list(cc.count(files, ["rain"], key=name))

    first = query(right, right_by, "right")
    assert sorted(r.counts[0] for r in first) == [2, 4, 6] and not any(r.cached for r in first)
    assert_wrong(query(wrong, wrong_by, "wrong"))
    again = query(right, right_by, "right-again")
    assert all(r.cached for r in again) and sorted(r.counts[0] for r in again) == [2, 4, 6]
