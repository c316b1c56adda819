"""Exceptions raised by the driver."""

from __future__ import annotations

from typing import Optional, Union

RequestId = Union[int, str, None]


class CryptCountError(Exception):
    """Base class of every error the driver raises."""


class BinaryNotFound(CryptCountError, FileNotFoundError):
    """The `cryptcount` executable could not be found or started."""


class RequestError(CryptCountError):
    """The coprocess answered a request with an ``error`` response.

    ``code`` is the protocol's error code (``unknown_key``, ``bad_request``, ...);
    ``message`` is the coprocess's human-readable text (it never contains a secret).
    """

    def __init__(self, code: str, message: str, request_id: RequestId = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class CoprocessDied(CryptCountError):
    """The coprocess exited (crashed, was killed, or was closed) while a call needed it.

    ``returncode`` is its exit status (negative: killed by that signal; None if unknown) and
    ``stderr_tail`` the last lines it wrote to stderr.
    """

    def __init__(self, returncode: Optional[int], stderr_tail: str, reason: str = "") -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.reason = reason
        text = reason or "the cryptcount coprocess exited"
        text += f" (exit status {returncode})" if returncode is not None else " (exit status unknown)"
        if stderr_tail:
            text += "; last stderr:\n" + stderr_tail
        super().__init__(text)


class ProtocolError(CryptCountError):
    """The coprocess sent something this driver cannot understand."""
