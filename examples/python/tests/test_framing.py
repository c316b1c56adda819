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
