"""End-to-end test of coproc-search.sh against the built binary ($CRYPTCOUNT_BIN or .build/debug/cryptcount)."""

import os
import pathlib
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "coproc-search.sh"
BINARY = pathlib.Path(os.environ.get("CRYPTCOUNT_BIN") or ROOT / ".build" / "debug" / "cryptcount")

pytestmark = pytest.mark.skipif(not BINARY.exists(), reason=f"{BINARY} not built (swift build)")


def run(args, stdin, cwd):
    env = {**os.environ, "CRYPTCOUNT": str(BINARY)}
    return subprocess.run(["bash", str(SCRIPT), *args], input=stdin, capture_output=True, cwd=cwd, env=env,
                          timeout=60)


@pytest.fixture
def diary(tmp_path):
    (tmp_path / "pw").write_bytes(b"hunter2\n")
    (tmp_path / "day1.txt").write_bytes(b"Dear diary, the cat sat on the mat.\n")
    (tmp_path / "day2.txt").write_bytes(b"The cat is back. Cat food is expensive.\n")
    for day in ("day1", "day2"):
        subprocess.run([str(BINARY), "encrypt", "--cipher", "biographer", "--secret-file", "pw",
                        f"{day}.txt", f"{day}.bio"], cwd=tmp_path, check=True)
    shutil.copy(tmp_path / "day1.bio", tmp_path / os.fsdecode(b"d\xff.bio"))
    return tmp_path


def test_search_session(diary):
    r = run(["-c", "biographer", "-k", "pw", "day1.bio", "day2.bio"], b"cat\nmat\n\ndog", diary)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        "cat\tday1.bio\t1", "cat\tday2.bio\t1", "cat\tTOTAL\t2",
        "mat\tday1.bio\t1", "mat\tTOTAL\t1",
        "dog\tTOTAL\t0",
    ]


def test_odd_names_terms_and_bad_files(diary):
    odd = b"d\xff.bio"
    r = run(["-c", "biographer", "-k", "pw", "day1.bio", os.fsdecode(odd), "missing.bio", "day1.txt"],
            b'"the cat\n\\\n', diary)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(b"\n") == [
        b'"the cat\tTOTAL\t0', b"\\\tTOTAL\t0", b"",
    ]
    r = run(["-c", "biographer", "-k", "pw", "day1.bio", os.fsdecode(odd), "missing.bio", "day1.txt"], b"cat\n", diary)
    assert r.stdout.split(b"\n") == [b"cat\tday1.bio\t1", b"cat\t" + odd + b"\t1", b"cat\tTOTAL\t2", b""]
    assert b"missing.bio: not_found" in r.stderr
    assert b"day1.txt: bad_format" in r.stderr


def test_plain_files(diary):
    r = run(["day1.txt", "day2.txt"], b"the\n", diary)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["the\tday1.txt\t2", "the\tTOTAL\t2"]


def test_errors(diary):
    r = run(["-c", "biographer", "day1.bio"], b"cat\n", diary)
    assert r.returncode == 2 and b"needs -k" in r.stderr
    r = run(["-c", "rot13", "-k", "pw", "day1.bio"], b"cat\n", diary)
    assert r.returncode == 1 and b"unknown_cipher" in r.stderr
    assert b"hunter2" not in r.stderr
    r = run([], b"", diary)
    assert r.returncode == 2 and b"usage" in r.stderr


def test_ignore_case_and_whole_word(diary):
    r = run(["-i", "-c", "biographer", "-k", "pw", "day1.bio", "day2.bio"], b"cat\n", diary)
    assert r.stdout.decode().splitlines() == ["cat\tday1.bio\t1", "cat\tday2.bio\t2", "cat\tTOTAL\t3"]
    r = run(["-w", "day1.txt"], b"at\nsat\n", diary)
    assert r.stdout.decode().splitlines() == ["at\tTOTAL\t0", "sat\tday1.txt\t1", "sat\tTOTAL\t1"]


def test_regular_expressions(diary):
    # day1: "cat sat mat" -> [cms]at 3; day2: "cat", "Cat" -> 1 (2 with -i).
    r = run(["-e", "-c", "biographer", "-k", "pw", "day1.bio", "day2.bio"], b"[cms]at\\b\nx(\na*\n\\w+y\n", diary)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        "[cms]at\\b\tday1.bio\t3", "[cms]at\\b\tday2.bio\t1", "[cms]at\\b\tTOTAL\t4",
        "\\w+y\tday1.bio\t1", "\\w+y\tTOTAL\t1",
    ]
    assert b"pattern 'x(': bad_request" in r.stderr and b"pattern 'a*': bad_request" in r.stderr
    r = run(["-e", "-i", "day2.txt"], b"cat\\b\n", diary)
    assert r.stdout.decode().splitlines() == ["cat\\b\tday2.txt\t2", "cat\\b\tTOTAL\t2"]
