"""Fernet through the real binary, on tokens made by Python's `cryptography`: every length class
(0...80 bytes: each AES block count and base64 padding; around the one-pass kernel's 3,072-byte
pieces; up to 70 KiB) counts exactly what Python decrypts, and a bit flipped in any region of a
token (version, timestamp, IV, ciphertext, MAC) fails that file and adds nothing to the counts.
The plaintext cache is off, so every request decrypts (cold)."""

import base64
import os

import pytest

from cc_harness import Serve, check_count_done

fernet = pytest.importorskip("cryptography.fernet")

TERM = b"needle"


def story(n, rng):
    """n bytes with the term in it a known number of times: (bytes, occurrences)."""
    body = bytearray(rng.randbytes(n))
    for i in range(len(body)):  # no accidental terms: letters only outside the planted ones
        body[i] = 0x61 + body[i] % 5
    hits = 0
    for at in range(0, n - len(TERM) + 1, 997):
        body[at:at + len(TERM)] = TERM
        hits += 1
    return bytes(body), hits


def count(serve, paths, key, rid):
    rs = serve.request({"op": "count", "id": rid, "files": paths, "terms": [TERM.decode()], "key": key})
    done = check_count_done(rs, rid, len(paths))
    files = {r["index"]: r for r in rs if r.get("type") == "file"}
    return done, files


def test_every_length_class_and_flipped_bits(tmp_path):
    import random

    rng = random.Random(14)
    key = fernet.Fernet.generate_key()
    f = fernet.Fernet(key)
    lengths = list(range(0, 81)) + [3047, 3048, 3063, 3064, 3072, 3080, 6144, 9000, 65536, 71680]
    paths, expect = [], 0
    for n in lengths:
        plain, hits = story(n, rng)
        token = f.encrypt(plain)
        assert f.decrypt(token) == plain
        p = tmp_path / f"ok-{n}.fernet"
        p.write_bytes(token + b"\n")
        paths.append(str(p))
        expect += hits
    assert expect > 100

    # One token with the term, a bit flipped in each region.
    plain, hits = story(5000, rng)
    assert hits > 0
    raw = bytearray(base64.urlsafe_b64decode(f.encrypt(plain)))
    regions = {"version": 0, "timestamp": 4, "iv": 15, "ciphertext": 25 + 2000, "last block": len(raw) - 33,
               "mac": len(raw) - 1}
    bad = []
    for name, at in regions.items():
        t = bytearray(raw)
        t[at] ^= 0x10
        p = tmp_path / f"bad-{name}.fernet"
        p.write_bytes(base64.urlsafe_b64encode(bytes(t)))
        bad.append((name, str(p)))

    with Serve("--cache-mb", "0") as s:
        assert s.one({"op": "unlock", "id": "u", "name": "k", "cipher": "fernet", "secret": key.decode()})["type"] == "ok"
        done, files = count(s, paths, "k", "good")
        assert all("error" not in r for r in files.values())
        assert done["counts"] == [expect]
        # Twice: the second run is cold as well (no cache) and must agree.
        done, _ = count(s, paths, "k", "again")
        assert done["counts"] == [expect]

        done, files = count(s, [p for _, p in bad], "k", "bad")
        assert done["counts"] == [0]
        for i, (name, _) in enumerate(bad):
            code = files[i]["error"]["code"]
            assert code == ("bad_format" if name == "version" else "decrypt_failed"), name
            assert "counts" not in files[i] or files[i]["counts"] == [0]

        # The good files and the tampered ones in one request: only the good ones count.
        mixed = paths + [p for _, p in bad]
        done, files = count(s, mixed, "k", "mixed")
        assert done["counts"] == [expect]
        assert sum(1 for r in files.values() if "error" in r) == len(bad)


def test_tokens_python_reads_in_other_shapes(tmp_path):
    """A token wrapped onto lines (LF or CRLF, as `fold` or a mail body leaves it) or written in
    the standard `+`/`/` alphabet is still a Fernet token to Python's `Fernet.decrypt`, and so to
    cryptcount, by name and through `auto`; a stray character Python would skip is bad_format."""
    import random

    rng = random.Random(7)
    key = fernet.Fernet.generate_key()
    f = fernet.Fernet(key)
    shapes, expect = {}, 0
    for i in range(12):
        plain, hits = story(300 + 700 * i, rng)
        token = f.encrypt(plain)
        expect += 4 * hits
        std = token.replace(b"-", b"+").replace(b"_", b"/")
        shapes[f"wrapped-{i}"] = b"\n".join(token[k:k + 76] for k in range(0, len(token), 76)) + b"\n"
        shapes[f"crlf-{i}"] = b"\r\n".join(token[k:k + 64] for k in range(0, len(token), 64)) + b"\r\n"
        shapes[f"standard-{i}"] = std
        shapes[f"both-{i}"] = b"\n".join(std[k:k + 50] for k in range(0, len(std), 50))
    for name, data in shapes.items():
        assert f.decrypt(data) == f.decrypt(data.replace(b"\n", b"")), name  # Python reads every shape
    paths = []
    for name, data in shapes.items():
        p = tmp_path / f"{name}.fernet"
        p.write_bytes(data)
        paths.append(str(p))
    stray = tmp_path / "stray.fernet"
    token = f.encrypt(b"needle")
    stray.write_bytes(token[:30] + b"." + token[30:])
    assert f.decrypt(stray.read_bytes()) == b"needle"  # Python skips the dot; cryptcount does not

    with Serve("--cache-mb", "0") as s:
        for rid, extra in (("named", {"cipher": "fernet", "secret": key.decode()}),
                           ("auto", {"cipher": "auto", "keys": ["k"]})):
            if rid == "auto":
                assert s.one({"op": "unlock", "id": "u", "name": "k", "cipher": "fernet",
                              "secret": key.decode()})["type"] == "ok"
            rs = s.request({"op": "count", "id": rid, "files": paths + [str(stray)], "terms": [TERM.decode()],
                            **extra})
            done = check_count_done(rs, rid, len(paths) + 1)
            files = {r["index"]: r for r in rs if r.get("type") == "file"}
            assert done["counts"] == [expect], rid
            if rid == "named":
                assert [i for i, r in files.items() if "error" in r] == [len(paths)]
                assert files[len(paths)]["error"]["code"] == "bad_format"
            else:  # not sniffed as a token: `auto` reads it as plain text
                assert not any("error" in r for r in files.values())
                assert files[len(paths)]["counts"] == [0]
            if rid == "auto":
                assert all(files[i].get("cipher") == "fernet" for i in range(len(paths)))
