"""Drives every op of protocol v1 with nothing but subprocess + msgpack, as the spec describes
it (shared/design/protocol-v1.md), and checks counts against Python's bytes.count."""

import os
import random
import struct
import subprocess
import sys
import time

import msgpack
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Golden"))
from schema_check import check_response  # noqa: E402  (every response read is schema-checked)

BIN = os.environ.get("CRYPTCOUNT_BIN", "")
if not BIN or not os.access(BIN, os.X_OK):
    pytest.skip("set CRYPTCOUNT_BIN to the built cryptcount binary (make test does)", allow_module_level=True)


def hexb(b: bytes) -> bytes:
    return b.hex().encode()


def biographer_encrypt(plain: bytes, pw: bytes, v0: bool = False) -> bytes:
    """The seed format, from shared/seed/biographer-format.md."""
    amount = sum(hexb(pw)) % 256
    t = hexb(plain)
    if v0:
        c = bytearray(t)
    else:
        t = hexb(hexb(hexb(t)))
        iv = bytes(random.randint(1, 254) for _ in range(8))
        c = bytearray(iv + t)
        for i in range(8, len(c)):
            c[i] ^= c[i - 8]
    for i in range(len(c)):
        c[i] = ((c[i] + amount) % 256) ^ pw[i % len(pw)]
    return bytes(c)


class Serve:
    def __init__(self, *args):
        self.p = subprocess.Popen([BIN, "serve", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)

    def send_raw(self, b: bytes):
        self.p.stdin.write(b)
        self.p.stdin.flush()

    def send(self, obj):
        b = msgpack.packb(obj, use_bin_type=True)
        self.send_raw(struct.pack(">I", len(b)) + b)

    def recv(self):
        h = self.p.stdout.read(4)
        if len(h) < 4:
            return None
        (n,) = struct.unpack(">I", h)
        response = msgpack.unpackb(self.p.stdout.read(n), raw=False)
        check_response(response)
        return response

    def until_terminal(self, rid):
        out = []
        while True:
            r = self.recv()
            assert r is not None, "output ended early"
            out.append(r)
            if r["id"] == rid and r["type"] != "file":
                return out

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(timeout=10)
        err = self.p.stderr.read()
        return rc, err


@pytest.fixture
def diary(tmp_path):
    rng = random.Random(7)
    words = "the rain in spain falls mainly on the plain café naïve 🙂 Rain RAIN rainy".split()
    stories = []
    for i in range(60):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 400))).encode()
        p = tmp_path / f"story{i}.bio"
        p.write_bytes(biographer_encrypt(text, b"hunter2"))
        stories.append((str(p), text))
    return stories


def test_every_op_and_exact_counts(diary, tmp_path):
    s = Serve("--workers", "2")
    s.send({"id": 1, "op": "hello"})
    h = s.recv()
    assert h["type"] == "hello" and h["protocol"] == 1 and h["server"] == "cryptcount"
    assert {"plain", "biographer", "biographer-v0"} <= set(h["ciphers"])
    assert h["max_frame"] == 16 * 1024 * 1024 and h["workers"] == 2

    s.send({"id": 2, "op": "unlock", "name": "diary", "cipher": "biographer", "secret": "hunter2"})
    assert s.recv() == {"id": 2, "type": "ok"}

    terms = ["rain", "the", "ai", "🙂", "é"]
    paths = [p for p, _ in diary]
    for rep in range(2):
        rid = f"q{rep}"
        s.send({"id": rid, "op": "count", "files": paths, "terms": terms, "key": "diary", "words": True})
        rs = s.until_terminal(rid)
        files = [r for r in rs if r["type"] == "file"]
        assert len(files) == len(paths)
        for r in files:
            text = diary[r["index"]][1]
            assert r["path"] == paths[r["index"]]
            assert r["counts"] == [text.count(t.encode()) for t in terms]
            assert r["bytes"] == len(text)
            assert r["words"] == len(text.split())
            assert r["cached"] is (rep == 1)
        done = rs[-1]
        assert done["type"] == "done" and done["files"] == len(paths) and done["skipped"] == 0
        assert done["counts"] == [sum(t.count(x.encode()) for _, t in diary) for x in terms]
        assert done["cancelled"] is False

    s.send({"id": 3, "op": "stats"})
    st = s.recv()
    assert st["type"] == "stats" and st["cache"]["hits"] >= len(paths) and st["in_flight"] == 0

    s.send({"id": 4, "op": "count", "files": paths * 50, "terms": ["rain"], "key": "diary", "ordered": True})
    s.send({"id": 5, "op": "cancel", "target": 4})
    rs = s.until_terminal(4)
    idx = [r["index"] for r in rs if r["type"] == "file"]
    assert idx == sorted(idx)
    assert rs[-1]["files"] + rs[-1]["skipped"] == len(paths) * 50
    ok = rs if any(r["id"] == 5 for r in rs) else s.until_terminal(5)
    assert any(r["id"] == 5 and r["type"] == "ok" for r in ok)

    s.send({"id": 6, "op": "forget", "name": "diary"})
    assert s.recv()["type"] == "ok"
    s.send({"id": 7, "op": "forget", "name": "diary"})
    assert s.recv()["code"] == "unknown_key"

    # Both frames in one write: the coprocess may exit right after reading the first.
    frames = b""
    for obj in ({"id": 8, "op": "shutdown"}, {"id": 9, "op": "hello"}):
        b = msgpack.packb(obj, use_bin_type=True)
        frames += struct.pack(">I", len(b)) + b
    s.send_raw(frames)
    assert s.recv() == {"id": 8, "type": "ok"}
    assert s.recv() is None
    rc, err = s.close()
    assert rc == 0
    assert b"hunter2" not in err


def test_inline_secret_v0_and_bin_paths(tmp_path):
    text = "Dear diary, it rained. It RAINED!".encode()
    p = tmp_path / "x.v0"
    p.write_bytes(biographer_encrypt(text, "pässword".encode(), v0=True))
    s = Serve()
    s.send({"id": 1, "op": "count", "files": [os.fsencode(p)], "terms": [b"rain"], "cipher": "biographer-v0",
            "secret": "pässword", "ignore_case": True})
    rs = s.until_terminal(1)
    assert rs[0]["path"] == os.fsencode(p)  # bin in, bin out
    assert rs[0]["counts"] == [2]
    s.close()


def test_request_errors_keep_serving():
    s = Serve()
    s.send_raw(b"\x00\x00\x00\x00")
    assert s.recv()["code"] == "bad_frame"
    s.send_raw(b"\x00\x00\x00\x01\xc1")
    assert s.recv()["code"] == "bad_msgpack"
    s.send([1, 2])
    assert s.recv()["code"] == "bad_request"
    s.send({"id": 1, "op": "nope"})
    r = s.recv()
    assert (r["id"], r["type"], r["code"]) == (1, "error", "unknown_op") and r["message"]
    for req, code in [
        ({"id": 2, "op": "count", "files": [], "cipher": "rot13"}, "unknown_cipher"),
        ({"id": 3, "op": "count", "files": [], "key": "nokey"}, "unknown_key"),
        ({"id": 4, "op": "count", "files": [], "cipher": "biographer", "secret": ""}, "bad_secret"),
        ({"id": 5, "op": "count", "files": [], "terms": [""]}, "bad_request"),
        ({"id": 6, "op": "count"}, "bad_request"),
    ]:
        s.send(req)
        r = s.recv()
        assert (r["id"], r["type"], r["code"]) == (req["id"], "error", code), r
    s.send({"id": 7, "op": "hello"})
    assert s.recv()["type"] == "hello"
    rc, _ = s.close()
    assert rc == 0
