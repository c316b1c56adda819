"""The transport and MessagePack layers on their own (no coprocess needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptcount import BinaryNotFound, ProtocolError, _transport
from cryptcount._stream import pack, unpack
from cryptcount._transport import FrameDecoder, TailBuffer, encode_frame, find_binary
from cryptcount._types import wire_path


def test_frames_split_across_reads_are_reassembled() -> None:
    stream = b"".join(encode_frame(pack({"id": i, "type": "ok"})) for i in range(5))
    dec = FrameDecoder()
    got = []
    for i in range(0, len(stream), 3):
        got += [unpack(f) for f in dec.feed(stream[i : i + 3])]
    assert [m["id"] for m in got] == [0, 1, 2, 3, 4]
    assert dec.pending == 0


def test_zero_and_oversized_frames_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(b"\x00\x00\x00\x00")
    with pytest.raises(ProtocolError):
        FrameDecoder(max_frame=10).feed(b"\x00\x00\x00\x0b")


def test_invalid_utf8_str_does_not_raise() -> None:
    # A MessagePack str (fixstr, 3 bytes) holding bytes that are not UTF-8.
    payload = b"\x81\xa4path\xa3a\xff\xfe"
    value = unpack(payload)
    assert value["path"].encode("utf-8", "surrogateescape") == b"a\xff\xfe"


def test_bin_comes_back_as_bytes_and_str_as_str() -> None:
    value = unpack(pack({"b": b"\xff", "s": "caf\u00e9"}))
    assert value == {"b": b"\xff", "s": "caf\u00e9"}


def test_trailing_bytes_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        unpack(pack(1) + pack(2))


def test_wire_path_keeps_non_utf8_names_as_bytes() -> None:
    assert wire_path("a/b") == "a/b"
    assert wire_path(b"a/\xff") == b"a/\xff"
    # os.fsdecode of a non-UTF-8 name gives surrogate escapes; it must go out as the original bytes.
    assert wire_path("a/\udcff") == b"a/\xff"


def test_tail_buffer_keeps_the_end() -> None:
    tail = TailBuffer(limit=32)
    for i in range(100):
        tail.append(f"line {i}\n".encode())
    text = tail.text()
    assert text.endswith("line 99")
    assert "line 1\n" not in text


def test_find_binary_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tmp_path / "cryptcount"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    other = tmp_path / "other"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CRYPTCOUNT_BIN", raising=False)
    monkeypatch.setattr(_transport, "BUNDLED_BINARY", str(tmp_path / "_bin" / "cryptcount"))
    assert find_binary() == str(exe)  # PATH
    bundled = tmp_path / "_bin" / "cryptcount"
    bundled.parent.mkdir()
    bundled.write_text("#!/bin/sh\n")
    bundled.chmod(0o644)
    assert find_binary() == str(exe)  # a bundled file that is not executable is skipped
    bundled.chmod(0o755)
    assert find_binary() == str(bundled)  # the bundled binary before PATH
    monkeypatch.setenv("CRYPTCOUNT_BIN", str(other))
    assert find_binary() == str(other)  # $CRYPTCOUNT_BIN before PATH
    assert find_binary(exe) == str(exe)  # the argument before both
    monkeypatch.setenv("CRYPTCOUNT_BIN", str(tmp_path / "missing"))
    with pytest.raises(BinaryNotFound):
        find_binary()
    monkeypatch.delenv("CRYPTCOUNT_BIN")
    bundled.unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BinaryNotFound):
        find_binary()


FAKE_SERVER = r'''#!/usr/bin/env python3
# A coprocess that answers hello properly and every count with one malformed response.
import struct, sys, msgpack
BAD = msgpack.unpackb(bytes.fromhex(sys.argv[-1]), raw=False)
inp, out = sys.stdin.buffer, sys.stdout.buffer
def send(m):
    b = msgpack.packb(m, use_bin_type=True)
    out.write(struct.pack(">I", len(b)) + b); out.flush()
while True:
    h = inp.read(4)
    if len(h) < 4:
        break
    req = msgpack.unpackb(inp.read(struct.unpack(">I", h)[0]), raw=False)
    rid, op = req.get("id"), req.get("op")
    if op == "hello":
        send({"id": rid, "type": "hello", "protocol": 1, "server": "cryptcount", "version": "0.0.0",
              "ciphers": ["plain"], "ops": ["hello", "count", "cancel", "shutdown"], "workers": 1,
              "max_frame": 16777216})
    elif op == "count":
        send(dict(BAD, id=rid))
    elif op in ("cancel", "shutdown"):
        send({"id": rid, "type": "ok"})
        if op == "shutdown":
            break
'''


@pytest.mark.foreign_server
@pytest.mark.parametrize("bad", [
    {"type": "file", "index": 0, "path": "a", "counts": "bad", "bytes": 1, "cached": False},
    {"type": "file", "path": "a", "counts": [1], "bytes": 1, "cached": False},
    {"type": "file", "index": 99, "path": "a", "counts": [1], "bytes": 1, "cached": False},
    {"type": "file", "index": 0, "path": "a", "error": "notamap"},
    {"type": "done", "files": "x", "failed": 0, "skipped": 0, "counts": [0], "elapsed_us": 1, "cancelled": False},
    {"type": "error", "message": "no code"},
])
def test_malformed_responses_are_protocol_errors(tmp_path, bad):
    """A response the driver cannot read (from a broken or foreign server) ends the query with
    ProtocolError, a CryptCountError, instead of odd values (`counts` 'bad' read as ['b','a','d'])
    or a bare ValueError."""
    import msgpack

    from cryptcount import Coprocess, CryptCountError

    fake = tmp_path / "fake-server"
    fake.write_text(FAKE_SERVER)
    fake.chmod(0o755)
    with Coprocess(str(fake), args=(msgpack.packb(bad).hex(),)) as cc:
        q = cc.count([str(tmp_path / "a")], ["x"])
        with pytest.raises(ProtocolError) as e:
            list(q)
        assert isinstance(e.value, CryptCountError)
        with pytest.raises(ProtocolError):
            q.wait()
