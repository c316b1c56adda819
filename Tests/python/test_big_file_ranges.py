"""A big file is split into ranges that idle workers count (issue 14, targets 2 and 3).

The range size is forced tiny through `CRYPTCOUNT_RANGE_BYTES` (the engine's test knob), so
small files are split into hundreds of ranges and matches sit exactly on range edges. Counts must
equal Python's `bytes.count` (literal, case-sensitive: the same non-overlapping semantics), ripgrep
(regular expressions) and the same coprocess without splitting (`--workers 1` never splits), for
plain files and for age files made by the real `age` tool; tampered and truncated age files give
the same `decrypt_failed` as when read in order.
"""

import os
import random
import shutil
import subprocess

import pytest

from cc_harness import Serve

AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")
RG = shutil.which("rg")

RANGE = 4096
TERMS = ["aa", "aba", "abab", "garden", "Straße", "x", "heron egret"]


def place_on_edges(rng, size, edge):
    """Text of `size` bytes with terms written across every range edge at every alignment."""
    words = "the garden heron egret aa aaa abab aba Straße STRASSE straße café naïve x y z".split()
    buf = bytearray()
    while len(buf) < size:
        buf += rng.choice(words).encode() + rng.choice([b" ", b" ", b"\n", b", ", b"-"])
    del buf[size:]
    for k in range(1, size // edge):
        at = k * edge
        term = rng.choice([b"garden", b"abab", b"aaaaaaa", b"Stra\xc3\x9fe", b"heron egret", b"x"])
        shift = rng.randrange(0, len(term) + 1)
        lo = max(0, at - shift)
        buf[lo:lo + len(term)] = term
        del buf[size:]
    return bytes(buf)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ranges")
    rng = random.Random(14)
    files = {}
    files["edges.txt"] = place_on_edges(rng, 300 * RANGE + 123, RANGE)
    # Long runs of one byte across edges (overlapping candidates for "aa", "aba").
    files["runs.txt"] = (b"a" * (3 * RANGE + 1) + b"b" + b"ab" * (2 * RANGE) + b"\n") * 4
    # A line longer than several ranges (regex ranges move to line starts).
    files["longline.txt"] = place_on_edges(rng, 20 * RANGE, RANGE).replace(b"\n", b" ") + b"\n" + \
        place_on_edges(rng, 20 * RANGE, RANGE)
    paths = {}
    for name, data in files.items():
        p = root / name
        p.write_bytes(data)
        paths[name] = str(p)
    return root, files, paths


def count(paths, terms, env_range=None, workers=2, extra=(), unlock=None, **opts):
    env = dict(os.environ)
    if env_range is not None:
        env["CRYPTCOUNT_RANGE_BYTES"] = str(env_range)
    with Serve("--workers", str(workers), "--cache-mb", "0", *extra, env=env) as s:
        if unlock is not None:
            assert s.one({"id": 0, "op": "unlock", **unlock})["type"] == "ok"
        rs = s.request({"id": 1, "op": "count", "files": list(paths), "terms": terms, "ordered": True, **opts})
    files = [r for r in rs if r.get("type") == "file"]
    assert len(files) == len(paths)
    return [{k: v for k, v in r.items() if k not in ("elapsed_us",)} for r in files]


def test_split_literal_counts_equal_python(corpus):
    _, files, paths = corpus
    names = sorted(paths)
    for edge in (RANGE, 97, 13):
        got = count([paths[n] for n in names], TERMS, env_range=edge)
        for n, r in zip(names, got):
            assert r["counts"] == [files[n].count(t.encode()) for t in TERMS], (n, edge)


@pytest.mark.parametrize("opts", [
    {"ignore_case": True},
    {"whole_word": True},
    {"ignore_case": True, "whole_word": True},
    {"offsets": True, "max_offsets": 50},
    {"offsets": True, "max_offsets": 5000, "words": True},
    {"regex": True},
    {"regex": True, "ignore_case": True, "offsets": True, "max_offsets": 100},
])
def test_split_equals_unsplit(corpus, opts):
    _, _, paths = corpus
    names = sorted(paths)
    terms = TERMS + ([r"gar\w+", r"^a+b", r"(?:ab)+$", r"\bx\b"] if opts.get("regex") else [])
    whole = count([paths[n] for n in names], terms, workers=1, **opts)
    for edge in (RANGE, 97):
        split = count([paths[n] for n in names], terms, env_range=edge, **opts)
        assert split == whole, (opts, edge)


@pytest.mark.skipif(RG is None, reason="ripgrep (rg) is not installed; `make deps` installs it")
def test_split_regex_counts_equal_rg(corpus):
    _, _, paths = corpus
    names = sorted(paths)
    patterns = [r"gar\w+", r"a+b", r"Stra(ß|ss)e", r"heron\s+egret"]
    got = count([paths[n] for n in names], patterns, env_range=97, regex=True)
    for n, r in zip(names, got):
        want = []
        for p in patterns:
            out = subprocess.run([RG, "--no-config", "--count-matches", "-e", p, paths[n]],
                                 capture_output=True, text=True).stdout.strip()
            want.append(int(out) if out else 0)
        assert r["counts"] == want, n


@pytest.fixture(scope="module")
def age_files(corpus, tmp_path_factory):
    if AGE is None or AGE_KEYGEN is None:
        pytest.skip("age is not installed; `make deps` installs it")
    root = tmp_path_factory.mktemp("age-ranges")
    ident = root / "id.txt"
    subprocess.run([AGE_KEYGEN, "-o", str(ident)], check=True, capture_output=True)
    recipient = subprocess.run([AGE_KEYGEN, "-y", str(ident)], check=True, capture_output=True,
                               text=True).stdout.strip()
    rng = random.Random(3)
    # Bigger than a few STREAM chunks (64 KiB), with terms across range and chunk edges.
    plain = place_on_edges(rng, 5 * 65536 + 777, 65536) + place_on_edges(rng, 200 * RANGE, RANGE)
    src = root / "plain.txt"
    src.write_bytes(plain)
    enc = root / "big.age"
    subprocess.run([AGE, "-r", recipient, "-o", str(enc), str(src)], check=True)
    data = enc.read_bytes()
    bad = {}
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 1
    bad["tampered-middle.age"] = bytes(tampered)
    tampered = bytearray(data)
    tampered[-5] ^= 1
    bad["tampered-last.age"] = bytes(tampered)
    bad["truncated-mid-chunk.age"] = data[:-1000]
    bad["truncated-at-chunk.age"] = data[: len(data) - ((len(data) - 200) % 65552)]
    bad["trailing.age"] = data + b"x"
    bad_paths = []
    for name, b in bad.items():
        p = root / name
        p.write_bytes(b)
        bad_paths.append(str(p))
    return ident.read_text(), plain, str(enc), bad_paths


def test_split_age_counts_equal_plaintext(age_files):
    ident, plain, enc, _ = age_files
    # Tiny ranges read chunks through the scratch copy; ranges of several chunks (aligned to them
    # or not) open most chunks in place in the reader's buffer, a few per read.
    for edge in (RANGE, 97, 4 * 65536, 300001):
        for opts in ({}, {"offsets": True, "max_offsets": 10000, "words": True}):
            got = count([enc], TERMS, env_range=edge, cipher="age", secret=ident, **opts)[0]
            assert got["counts"] == [plain.count(t.encode()) for t in TERMS], edge
            assert got["bytes"] == len(plain)
            whole = count([enc], TERMS, workers=1, cipher="age", secret=ident, **opts)[0]
            assert got == whole
    # auto sniffs it as age and splits it the same way.
    got = count([enc], TERMS, env_range=RANGE, cipher="auto", keys=["k"],
                unlock={"name": "k", "cipher": "age", "secret": ident})[0]
    assert got["counts"] == [plain.count(t.encode()) for t in TERMS] and got["cipher"] == "age"


def test_split_age_damaged_files_fail_as_in_order(age_files):
    ident, _, _, bad = age_files
    whole = count(bad, ["garden"], workers=1, cipher="age", secret=ident)
    for edge in (97, 4 * 65536):
        split = count(bad, ["garden"], env_range=edge, cipher="age", secret=ident)
        for w, s in zip(whole, split):
            assert w["error"]["code"] == "decrypt_failed", w
            assert s == w
            assert "counts" not in s


def test_split_happens_only_with_idle_workers_and_big_files(corpus):
    """The knob really splits (ranges read their margins twice: more bytes read than the file
    has), and never with one worker or for a file under two ranges."""
    _, files, paths = corpus
    path = paths["edges.txt"]
    size = len(files["edges.txt"])

    def bytes_read(workers, edge):
        env = dict(os.environ, CRYPTCOUNT_RANGE_BYTES=str(edge))
        with Serve("--workers", str(workers), "--cache-mb", "0", env=env) as s:
            s.request({"id": 1, "op": "count", "files": [path], "terms": ["garden"]})
            return s.one({"id": 2, "op": "stats"})["bytes_read"]

    assert bytes_read(2, 97) > size
    assert bytes_read(1, 97) == size
    assert bytes_read(2, size // 2 + 1) == size


OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_split_openssl_counts_and_damage_equal_in_order(corpus, tmp_path):
    """`openssl enc -aes-256-cbc -pbkdf2` files: CBC blocks decrypt from the block before, so
    ranges are independent; damaged files (bad padding, not whole blocks, a flipped byte in the
    middle, which CBC cannot detect) give what the in-order read gives."""
    _, files, paths = corpus
    plain = files["edges.txt"]
    pw = tmp_path / "pw"
    pw.write_bytes(b"correct horse")
    enc = tmp_path / "big.enc"
    subprocess.run([OPENSSL, "enc", "-aes-256-cbc", "-pbkdf2", "-iter", "1000", "-salt", "-in", paths["edges.txt"],
                    "-out", str(enc), "-pass", f"file:{pw}"], check=True)
    data = enc.read_bytes()
    damaged = {"short-block.enc": data[:-5], "no-last-block.enc": data[:-16]}
    b = bytearray(data)
    # The top bit of the pad byte, through the block before (CBC): always bad padding. Flipping a
    # bit of the last block itself would garble it, valid padding again about 1 time in 255.
    b[-17] ^= 0x80
    damaged["bad-padding.enc"] = bytes(b)
    b = bytearray(data)
    b[len(b) // 2] ^= 1
    damaged["flipped-middle.enc"] = bytes(b)
    all_paths = [str(enc)]
    for name, d in damaged.items():
        (tmp_path / name).write_bytes(d)
        all_paths.append(str(tmp_path / name))
    opts = dict(cipher="openssl", secret="correct horse", iter=1000)
    whole = count(all_paths, TERMS, workers=1, **opts)
    for edge in (RANGE, 97):
        split = count(all_paths, TERMS, env_range=edge, **opts)
        assert split[0]["counts"] == [plain.count(t.encode()) for t in TERMS]
        assert split == whole, edge
    assert [w.get("error", {}).get("code") for w in whole] == [None, "bad_format", "decrypt_failed",
                                                                "decrypt_failed", None]
