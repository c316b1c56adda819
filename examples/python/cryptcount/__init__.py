"""Python driver for the `cryptcount serve` coprocess.

    from cryptcount import Coprocess
    with Coprocess() as cc:
        cc.unlock("diary", cipher="biographer", secret="hunter2")
        for r in cc.count(paths, terms=["rain"], key="diary"):
            print(r.path, r.counts, r.error)

Layers (like pynvim's): ``_transport`` (child process, pipes, framing), ``_stream``
(MessagePack), ``_session`` (ids, the reader thread, routing, death), then this public API.
"""

from ._async import AsyncCoprocess, AsyncCountQuery
from ._client import Coprocess, CountQuery
from ._types import FileError, FileResult, Summary
from .errors import BinaryNotFound, CoprocessDied, CryptCountError, ProtocolError, RequestError

__all__ = [
    "AsyncCoprocess",
    "AsyncCountQuery",
    "BinaryNotFound",
    "Coprocess",
    "CoprocessDied",
    "CountQuery",
    "CryptCountError",
    "FileError",
    "FileResult",
    "ProtocolError",
    "RequestError",
    "Summary",
]

__version__ = "0.1.0"
