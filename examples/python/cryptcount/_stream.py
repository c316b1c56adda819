"""Layer 2, MessagePack stream: one MessagePack value per frame, both ways."""

from __future__ import annotations

import threading
from typing import Any

import msgpack

from .errors import ProtocolError

_local = threading.local()
_unpackb = msgpack.unpackb


def pack(value: Any) -> bytes:
    """Encode a request. ``str`` becomes MessagePack str and ``bytes`` bin (use_bin_type)."""
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    unencodable = False
    try:
        data: bytes = packer.pack(value)
    except UnicodeEncodeError:
        # Its message holds the whole str, which may be a secret: raised below, outside this
        # handler, so no __context__ keeps it either.
        _local.packer = None
        unencodable = True
    except BaseException:
        # A failed pack can leave the packer's buffer dirty; start afresh next time.
        _local.packer = None
        raise
    if unencodable:
        raise ValueError("the request holds a str that is not valid UTF-8 (a lone surrogate): pass bytes")
    return data


def unpack(payload: bytes) -> Any:
    """Decode one response frame.

    bin arrives as ``bytes`` and str as ``str``; a str that is not valid UTF-8 does not raise but
    keeps its bad bytes as surrogate escapes (``os.fsencode`` gives them back).
    """
    try:
        # Without keyword arguments unpackb is twice as fast (it parses them on every call), and its
        # defaults (raw=False, use_list=True) match; it is only stricter (str keys, valid UTF-8).
        return _unpackb(payload)
    except Exception:
        pass
    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            unicode_errors="surrogateescape",
            strict_map_key=False,
            use_list=True,
        )
    except Exception as exc:  # ExtraData, FormatError, StackError, ValueError...
        raise ProtocolError(f"the coprocess sent a frame that is not one MessagePack value: {exc}") from exc
