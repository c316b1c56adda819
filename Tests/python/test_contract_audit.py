"""Statements of the contracts (shared/design/protocol-v1.md, protocol/PROTOCOL.md, README.md)
that no other suite pinned, found by an acceptance audit. Real binary, real files made by the
real tools (openssl)."""

import base64
import shutil
import subprocess

import pytest

from cc_harness import Serve

TEXT = b"Dear diary, the rain came. Rain again, rain!\n"
PASSWORD = b"audit pw"


def openssl(tmp_path, name, *flags):
    src = tmp_path / "plain.txt"
    src.write_bytes(TEXT)
    pw = tmp_path / "pw"
    pw.write_bytes(PASSWORD)
    out = tmp_path / name
    subprocess.run(["openssl", "enc", *flags, "-in", str(src), "-out", str(out), "-pass", f"file:{pw}"],
                   check=True, capture_output=True)
    return str(out)


def padding_is_valid(data, password):
    """Whether a `Salted__` file (binary) ends in valid PKCS#7 padding under `password`, checked
    as the coprocess decrypts (PBKDF2-HMAC-SHA256, 10,000 iterations, AES-256-CBC). The format
    has no MAC, so about one wrong password in 256 passes this by chance and decrypts to garbage
    (PROTOCOL.md says so); a test that wants `decrypt_failed` must avoid that case."""
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    km = PBKDF2HMAC(hashes.SHA256(), 48, data[8:16], 10_000).derive(password)
    body = data[16:]
    # The padding is all in the last block, which CBC decrypts from the block before it.
    iv, last = (body[-32:-16], body[-16:]) if len(body) >= 32 else (km[32:], body)
    d = Cipher(algorithms.AES(km[:32]), modes.CBC(iv)).decryptor()
    plain = d.update(last) + d.finalize()
    try:
        u = padding.PKCS7(128).unpadder()
        u.update(plain)
        u.finalize()
    except ValueError:
        return False
    return True


def openssl_padding_fails(tmp_path, name, *flags):
    """`openssl(...)` for a variant our key reads wrongly (another digest or cipher); the salt is
    random, so such a file is made again until its padding is invalid under our key."""
    for _ in range(20):
        path = openssl(tmp_path, name, *flags)
        if not padding_is_valid(open(path, "rb").read(), PASSWORD):
            return path
    raise AssertionError(f"{name}: 20 files in a row had valid padding under our key")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_variants_outside_the_format_fail_as_documented(tmp_path):
    """PROTOCOL.md, openssl: no Salted__ header (-nosalt) is bad_format; another cipher or digest
    has the header and fails through the padding (decrypt_failed)."""
    files = {
        openssl(tmp_path, "ok.bin", "-aes-256-cbc", "-pbkdf2"): None,
        openssl(tmp_path, "nosalt.bin", "-aes-256-cbc", "-pbkdf2", "-nosalt"): "bad_format",
        openssl_padding_fails(tmp_path, "sha512.bin", "-aes-256-cbc", "-pbkdf2", "-md", "sha512"): "decrypt_failed",
        openssl_padding_fails(tmp_path, "aes128.bin", "-aes-128-cbc", "-pbkdf2"): "decrypt_failed",
    }
    with Serve() as s:
        rs = s.request({"id": 1, "op": "count", "files": list(files), "cipher": "openssl",
                        "secret": PASSWORD, "terms": ["rain"], "ordered": True})
    got = {r["path"]: r.get("error", {}).get("code") for r in rs if r["type"] == "file"}
    assert got == files
    ok = next(r for r in rs if r["type"] == "file" and "error" not in r)
    assert ok["counts"] == [TEXT.count(b"rain")] and ok["bytes"] == len(TEXT)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_cli_auto_uses_the_secret_for_every_format_it_fits(tmp_path):
    """README, `cryptcount count --cipher auto`: the one secret is a key of every format it can
    be one of; a file of no encrypted format is plain text; --json rows carry "cipher"."""
    import json

    from cryptography.fernet import Fernet

    from cc_harness import binary

    enc = openssl(tmp_path, "o.bin", "-aes-256-cbc", "-pbkdf2")  # writes plain.txt and pw too
    (tmp_path / "t.fernet").write_bytes(Fernet(Fernet.generate_key()).encrypt(TEXT))
    r = subprocess.run([binary(), "count", "--json", "-t", "rain", "--cipher", "auto", "--secret-file",
                        str(tmp_path / "pw"), enc, "t.fernet", "plain.txt"], capture_output=True, cwd=tmp_path,
                       timeout=60)
    assert r.returncode == 2, r.stderr  # the Fernet file fails: the password is no Fernet key
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    n = TEXT.count(b"rain")
    assert rows[0] == {"path": enc, "counts": [n], "bytes": len(TEXT), "cipher": "openssl"}
    assert rows[1]["cipher"] == "fernet" and rows[1]["error"]["code"] == "decrypt_failed"
    assert rows[2] == {"path": "plain.txt", "counts": [n], "bytes": len(TEXT), "cipher": "plain"}
    assert PASSWORD not in r.stdout + r.stderr


def cache_entries(s, rid):
    return s.one({"id": rid, "op": "stats"})["cache"]["entries"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_forget_drops_plaintexts_decrypted_under_a_requests_options(tmp_path):
    """protocol-v1 (forget): "it drops the key and every cached plaintext that was decrypted with
    it", also one decrypted with the key under a request's `iter` (was kept: cached under the
    identity of the key with that iter, which forget never purged)."""
    enc = openssl(tmp_path, "o5000.bin", "-aes-256-cbc", "-pbkdf2", "-iter", "5000")
    with Serve() as s:
        assert s.one({"id": 1, "op": "unlock", "name": "o", "cipher": "openssl", "secret": PASSWORD})["type"] == "ok"
        rs = s.request({"id": 2, "op": "count", "files": [enc], "key": "o", "iter": 5000, "terms": ["rain"]})
        assert rs[0]["counts"] == [TEXT.count(b"rain")]
        assert cache_entries(s, 3) == 1
        assert s.one({"id": 4, "op": "forget", "name": "o"})["type"] == "ok"
        assert cache_entries(s, 5) == 0
        # The same password given inline decrypts it again (not answered from a leftover entry).
        rs = s.request({"id": 6, "op": "count", "files": [enc], "cipher": "openssl", "secret": PASSWORD,
                        "iter": 5000, "terms": ["rain"]})
        assert rs[0]["cached"] is False
        # Unless another name holds the key with that iter (PROTOCOL.md's Choice on shared entries).
        assert s.one({"id": 7, "op": "unlock", "name": "o", "cipher": "openssl", "secret": PASSWORD})["type"] == "ok"
        assert s.one({"id": 8, "op": "unlock", "name": "o5", "cipher": "openssl", "secret": PASSWORD,
                      "iter": 5000})["type"] == "ok"
        enc2 = openssl(tmp_path, "second.bin", "-aes-256-cbc", "-pbkdf2", "-iter", "5000")
        rs = s.request({"id": 9, "op": "count", "files": [enc2], "key": "o", "iter": 5000, "terms": ["rain"]})
        assert rs[0]["cached"] is False
        assert cache_entries(s, 10) == 2
        assert s.one({"id": 11, "op": "forget", "name": "o"})["type"] == "ok"
        assert cache_entries(s, 12) == 2
        rs = s.request({"id": 13, "op": "count", "files": [enc2], "key": "o5", "terms": ["rain"]})
        assert rs[0]["cached"] is True


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_unlock_over_a_name_drops_the_replaced_keys_plaintexts(tmp_path):
    """protocol-v1 (unlock): "Unlocking an existing name replaces it"; the replaced key is gone as
    by forget, and so are its cached plaintexts (were kept with no name left to forget them),
    unless another name holds the same key."""
    enc = openssl(tmp_path, "o.bin", "-aes-256-cbc", "-pbkdf2")

    def count(s, rid):
        return s.request({"id": rid, "op": "count", "files": [enc], "key": "o", "terms": ["rain"]})[0]

    with Serve() as s:
        assert s.one({"id": 1, "op": "unlock", "name": "o", "cipher": "openssl", "secret": PASSWORD})["type"] == "ok"
        assert count(s, 2)["counts"] == [TEXT.count(b"rain")]
        assert count(s, 3)["cached"] is True
        assert s.one({"id": 4, "op": "unlock", "name": "o", "cipher": "openssl", "secret": b"other"})["type"] == "ok"
        assert cache_entries(s, 5) == 0
        assert s.one({"id": 6, "op": "unlock", "name": "o", "cipher": "openssl", "secret": PASSWORD})["type"] == "ok"
        assert count(s, 7)["cached"] is False
        # Another name holding the same key keeps the entries.
        assert s.one({"id": 8, "op": "unlock", "name": "o2", "cipher": "openssl", "secret": PASSWORD})["type"] == "ok"
        assert s.one({"id": 9, "op": "unlock", "name": "o", "cipher": "openssl", "secret": b"other"})["type"] == "ok"
        assert cache_entries(s, 10) == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_forget_while_a_count_runs_leaves_no_plaintext_cached(tmp_path):
    """protocol-v1 (forget): every cached plaintext decrypted with the key is dropped, also those
    a request still running with it decrypts after the forget (PROTOCOL.md: such requests finish
    with the key). Was: the running request kept filling the cache after the purge."""
    enc = openssl(tmp_path, "o.bin", "-aes-256-cbc", "-pbkdf2", "-iter", "1")
    files = [enc]
    for i in range(1, 3000):  # copies (each its own inode, so its own cache entry) of real output
        files.append(str(tmp_path / f"{i}.bin"))
        shutil.copyfile(enc, files[-1])
    with Serve("--workers", "2") as s:
        assert s.one({"id": 1, "op": "unlock", "name": "o", "cipher": "openssl", "secret": PASSWORD,
                      "iter": 1})["type"] == "ok"
        s.send({"id": 2, "op": "count", "files": files, "key": "o", "terms": ["rain"]})
        s.send({"id": 3, "op": "forget", "name": "o"})
        out = s.until_terminal(2)
        done = out[-1]
        assert done["type"] == "done" and done["files"] == len(files) and done["failed"] == 0
        assert done["counts"] == [TEXT.count(b"rain") * len(files)]
        assert cache_entries(s, 4) == 0


def frame_sizes(raw):
    sizes, pos = [], 0
    while pos + 4 <= len(raw):
        n = int.from_bytes(raw[pos:pos + 4], "big")
        sizes.append(n)
        pos += 4 + n
    return sizes


def test_no_count_response_exceeds_max_frame(tmp_path):
    """protocol-v1.md, framing: `1 <= N <= max_frame` in both directions. A count request whose
    file or done responses could not fit (a count per term, its path, its id) is refused up front
    (bad_request naming max_frame); one that fits is answered in frames within the limit, a file
    error included; the session goes on. (Under 4 KiB, what cannot be cut may take 4 KiB: the
    golden case frame-too-large counts under --max-frame 64.)"""
    text = tmp_path / "a.txt"
    text.write_bytes(b"a" * 300)
    terms = [chr(c) for c in range(1, 128)] * 7  # 889 one-byte terms (2 bytes each in the request)
    long_missing = str(tmp_path / ("m" * 200))
    with Serve("--max-frame", "2500") as s:
        s.keep_raw = True
        refused = s.one({"id": 1, "op": "count", "files": [str(text)], "terms": terms})
        assert refused["type"] == "error" and refused["code"] == "bad_request"
        assert "max_frame" in refused["message"]
        rs = s.request({"id": 2, "op": "count", "files": [str(text), long_missing], "terms": terms[:200],
                        "ordered": True})
        files = [r for r in rs if r["type"] == "file"]
        assert files[0]["counts"][ord("a") - 1] == 300 and sum(files[0]["counts"]) == 300
        assert files[1]["error"]["code"] == "not_found"
        assert rs[-1]["type"] == "done" and rs[-1]["files"] == 2
        assert s.hello_ok()
        sizes = frame_sizes(s.out_raw)
    assert len(sizes) == 5 and max(sizes) <= 2500


@pytest.mark.parametrize("max_frame", [10000, 16 << 20])
def test_no_response_exceeds_max_frame_whatever_the_id(max_frame):
    """Every response echoes the id, so a string id too long for any response to hold within
    max_frame is refused like an unreadable one (bad_request, id nil); the longest accepted id
    is answered within the limit by every op, errors included."""
    longest = max_frame - 2048  # PROTOCOL.md, `id`
    with Serve("--max-frame", str(max_frame)) as s:
        s.keep_raw = True
        s.send({"id": "i" * (longest + 1), "op": "hello"})
        too_long = s.recv()
        assert too_long["type"] == "error" and too_long["code"] == "bad_request" and too_long["id"] is None
        assert "max_frame" in too_long["message"]
        rid = "i" * longest
        assert s.one({"id": rid, "op": "hello"})["type"] == "hello"
        assert s.one({"id": rid, "op": "stats"})["type"] == "stats"
        assert s.one({"id": rid, "op": "no-such-op-" + "x" * 1000})["code"] == "unknown_op"
        assert s.one({"id": rid, "op": "forget", "name": "k" * 1500})["code"] == "unknown_key"
        assert s.one({"id": rid, "op": "count", "files": [], "key": "k" * 1500})["code"] == "unknown_key"
        done = s.one({"id": rid, "op": "count", "files": []})
        assert done["type"] == "done" and done["id"] == rid
        assert s.hello_ok()
        sizes = frame_sizes(s.out_raw)
    assert len(sizes) == 8 and max(sizes) <= max_frame and max(sizes) > longest


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_base64_output_is_read_as_the_binary_form(tmp_path):
    """PROTOCOL.md, openssl: `openssl enc -a` (64-character lines) and `-a -A` (one line) are
    decoded as they stream in, also with CRLF line ends and through `auto`; a wrong password,
    a character outside base64, text after the padding and a cut file fail as the binary form
    would, with the binary form's codes."""
    big = b"".join(b"line %d: rain on the garden, rain again\n" % i for i in range(600_000))  # 24 MB
    (tmp_path / "big.txt").write_bytes(big)
    pw = tmp_path / "pw"
    pw.write_bytes(PASSWORD)

    def enc(name, src, *flags):
        subprocess.run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", *flags, "-in", str(tmp_path / src),
                        "-out", str(tmp_path / name), "-pass", f"file:{pw}"], check=True, capture_output=True)
        return str(tmp_path / name)

    small_a = openssl(tmp_path, "s.b64", "-aes-256-cbc", "-pbkdf2", "-a")
    small_one = openssl(tmp_path, "s1.b64", "-aes-256-cbc", "-pbkdf2", "-a", "-A")
    crlf = tmp_path / "crlf.b64"
    crlf.write_bytes(open(small_a, "rb").read().replace(b"\n", b"\r\n"))
    big_a = enc("big.b64", "big.txt", "-a")
    big_bin = enc("big.bin", "big.txt")
    text = open(big_a, "rb").read()
    assert text.startswith(b"U2FsdGVkX1") and b"\n" in text[:100]  # what openssl -a writes
    bad_char = tmp_path / "bad.b64"
    bad_char.write_bytes(text[:200] + b"*" + text[201:])
    after_pad = tmp_path / "after.b64"
    after_pad.write_bytes(open(small_one, "rb").read().rstrip(b"\n") + b"\nQUJD\n")
    cut = tmp_path / "cut.b64"
    cut.write_bytes(text[: len(text) // 2])
    want = {
        small_a: ("ok", TEXT.count(b"rain"), len(TEXT)),
        small_one: ("ok", TEXT.count(b"rain"), len(TEXT)),
        str(crlf): ("ok", TEXT.count(b"rain"), len(TEXT)),
        big_a: ("ok", big.count(b"rain"), len(big)),
        big_bin: ("ok", big.count(b"rain"), len(big)),
        str(bad_char): ("bad_format", None, None),
        str(after_pad): ("bad_format", None, None),
        str(cut): ("bad_format", None, None),
    }
    with Serve() as s:
        assert s.one({"id": 0, "op": "unlock", "name": "o", "cipher": "openssl", "secret": PASSWORD})["type"] == "ok"
        for how in ({"cipher": "openssl", "secret": PASSWORD}, {"cipher": "auto", "keys": ["o"]}):
            rs = s.request({"id": 1, "op": "count", "files": list(want), **how, "terms": ["rain"], "ordered": True})
            got = {r["path"]: (r["error"]["code"], None, None) if "error" in r else ("ok", r["counts"][0], r["bytes"])
                   for r in rs if r["type"] == "file"}
            assert got == want, how
        # A wrong password whose padding check fails on both files (about 1 in 256 would not).
        binaries = [base64.b64decode(open(p, "rb").read()) for p in (small_a, big_a)]
        assert all(padding_is_valid(b, PASSWORD) for b in binaries)  # the check itself is right
        wrong = next(w for w in (b"not the password %d" % i for i in range(100))
                     if not any(padding_is_valid(b, w) for b in binaries))
        rs = s.request({"id": 2, "op": "count", "files": [small_a, big_a], "cipher": "openssl",
                        "secret": wrong, "terms": ["rain"]})
        assert [r["error"]["code"] for r in rs if r["type"] == "file"] == ["decrypt_failed"] * 2
