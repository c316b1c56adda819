"""Layer 4, the public thread-based API: :class:`Coprocess` and :class:`CountQuery`."""

from __future__ import annotations

import os
import queue
import subprocess
import time
from types import TracebackType
from typing import Any, Dict, Generic, Iterable, List, Mapping, Optional, Sequence, Type, TypeVar, Union

from ._query import CLOSED, CoprocessQuery, SyncQuery
from ._session import DEFAULT_SPIN, Death, Session
from ._transport import Transport, find_binary
from ._types import CountOptions, PathArg, TermArg, strip, unlock_request
from .errors import CryptCountError, ProtocolError

SUPPORTED_PROTOCOL = 1


class CountQuery(CoprocessQuery, SyncQuery):
    """A running ``count``: iterate it for :class:`FileResult` objects as they arrive.

    Breaking out of a ``for`` loop over it, leaving its ``with`` block, calling :meth:`close` or
    dropping the last reference to it cancels it in the coprocess if it is unfinished.
    """

    def __init__(self, session: Session, msg: Dict[str, Any], originals: List[Any], progress: bool) -> None:
        self._init_query(originals, progress)
        self._box: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._start(session, msg, self._box.put, owned=True)

    def _receive(self) -> None:
        # Reads the coprocess's output on this thread when no other thread is (Session.receive).
        self._handle(self._session.receive(self._box))

    def _wake(self) -> None:
        self._box.put(CLOSED)

    def __enter__(self) -> "CountQuery":
        return self


Q = TypeVar("Q")


class _Counting(Generic[Q]):
    """The ``count`` signature, once for the sync and asyncio APIs."""

    def count(
        self,
        files: Iterable[PathArg],
        terms: Iterable[TermArg] = (),
        key: Optional[str] = None,
        cipher: Optional[str] = None,
        secret: Any = None,
        ignore_case: bool = False,
        whole_word: bool = False,
        offsets: bool = False,
        max_offsets: Optional[int] = None,
        context: int = 0,
        words: bool = False,
        ordered: bool = False,
        progress: bool = False,
        regex: bool = False,
        **options: Any,
    ) -> Q:
        """Start a count; returns its query at once (iterate it; ``async for`` on the asyncio API,
        which must be called from a running event loop). Request errors are raised when the query
        is read.

        ``regex=True``: every term is a regular expression, counted as ``rg --count-matches``
        (servers whose ``hello()["features"]`` lists ``"regex"``)."""
        # Positional: a NamedTuple built from keywords costs several times as much (tiny requests).
        opts = CountOptions(
            key, cipher, secret, ignore_case, whole_word, offsets, max_offsets, context, words, ordered, regex, options
        )  # fmt: skip
        return self._start_count(files, terms, opts, progress)

    def _start_count(self, files: Iterable[PathArg], terms: Iterable[TermArg], opts: CountOptions, progress: bool) -> Q:
        raise NotImplementedError


class Coprocess(_Counting[CountQuery]):
    """One `cryptcount serve` child, shared safely by any number of threads.

    ``binary``: the executable (default: $CRYPTCOUNT_BIN, else the one bundled in
    the package, else `cryptcount` on PATH).
    ``workers``: passed as ``--workers N``. ``args``: further `serve` options
    (e.g. ``("--cache-mb", "64", "--allow-root", "/data")``).
    ``spin_us``: after sending a request it reads itself, a caller polls for the answer this
    many microseconds before blocking (None: 100; 0: block at once). Given explicitly, it is also
    passed to the coprocess as ``--spin-us`` (unless ``args`` has one), which does the same
    after answering a request on its reading thread.
    """

    def __init__(
        self,
        binary: Union[str, "os.PathLike[str]", None] = None,
        workers: Optional[int] = None,
        args: Sequence[Union[str, "os.PathLike[str]"]] = (),
        *,
        env: Optional[Mapping[str, str]] = None,
        cwd: Union[str, "os.PathLike[str]", None] = None,
        start_timeout: float = 10.0,
        spin_us: Optional[int] = None,
    ) -> None:
        self._closed = True
        argv = [find_binary(binary), "serve"]
        if workers is not None:
            argv += ["--workers", str(int(workers))]
        extra = [os.fspath(a) for a in args]
        if spin_us is not None:
            spin_us = int(spin_us)
            if spin_us < 0:
                raise ValueError("spin_us must not be negative")
            if not any(a == "--spin-us" or str(a).startswith("--spin-us=") for a in extra):
                argv += ["--spin-us", str(spin_us)]
        argv += extra
        self._transport = Transport(argv, env=env, cwd=cwd)
        self._session = Session(self._transport, DEFAULT_SPIN if spin_us is None else spin_us / 1e6)
        self._closed = False
        try:
            info = self._session.call({"op": "hello"}, timeout=start_timeout)
            if info.get("protocol") != SUPPORTED_PROTOCOL:
                raise ProtocolError(f"the coprocess speaks protocol {info.get('protocol')!r}, not 1")
        except BaseException as e:
            # A coprocess that did not answer `hello` in time is not asked to shut down.
            self.close(timeout=0.0 if isinstance(e, TimeoutError) else 1.0)
            raise
        max_frame = info.get("max_frame")
        if isinstance(max_frame, int) and max_frame > 0:
            self._session.set_max_frame(max_frame)
        #: The first ``hello`` response (server version, ciphers, ops, workers, max_frame).
        self.server_info: Dict[str, Any] = strip(info)

    # -- process -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._transport.pid

    @property
    def returncode(self) -> Optional[int]:
        """The exit status once the coprocess has exited, else None."""
        return self._transport.proc.poll()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def alive(self) -> bool:
        """True while the coprocess can take requests: not closed, not exited, still answering."""
        return not self._closed and not self._session.dead and self._transport.proc.poll() is None

    def stderr_tail(self) -> str:
        """The last lines the coprocess wrote to stderr."""
        return self._transport.stderr_tail.text()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel unfinished queries, send ``shutdown`` and wait for the exit. ``timeout`` bounds
        the whole wait: a coprocess still running then is terminated (SIGTERM, then SIGKILL half a
        second later), so ``close`` returns within about ``timeout`` + 0.5 s."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + max(0.0, timeout)

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        session = self._session
        proc = self._transport.proc
        # Queries still running end with CoprocessDied (not the summary of the cancel that
        # follows), on every later call, once the coprocess has exited.
        orphaned = session.take_sinks(set(session.active_counts))
        if not session.dead:
            for rid in list(session.active_counts):
                session.send_nowait({"op": "cancel", "target": rid})
            session.closing = True
            try:
                session.call({"op": "shutdown"}, timeout=left())
            except (CryptCountError, TimeoutError):
                pass
        self._transport.close_stdin()
        try:
            proc.wait(timeout=left())
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        session.join(2.0)
        for sink in orphaned:
            try:
                sink(Death(session.died()))
            except Exception:
                pass

    def __enter__(self) -> "Coprocess":
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Best effort without blocking: end of input makes the coprocess finish and exit.
        if not getattr(self, "_closed", True):
            try:
                self._transport.close_stdin(blocking=False)
            except Exception:
                pass

    # -- requests ------------------------------------------------------------------------

    def hello(self) -> Dict[str, Any]:
        return strip(self._session.call({"op": "hello"}))

    def unlock(self, name: str, cipher: str, secret: Any = None, **options: Any) -> None:
        """Keep a key in the coprocess under ``name`` (the secret never comes back)."""
        self._session.call(unlock_request(name, cipher, secret, options))

    def forget(self, name: str, timeout: Optional[float] = None) -> None:
        """Drop a key and every cached plaintext decrypted with it (``timeout``: seconds to wait
        for the answer, then ``TimeoutError``; None: as long as it takes). The request is sent
        either way: after a ``TimeoutError`` the key is most likely gone (forget it again to be
        sure; a second ``forget`` of a dropped key raises ``RequestError('unknown_key')``)."""
        self._session.call({"op": "forget", "name": name}, timeout=timeout)

    def stats(self) -> Dict[str, Any]:
        return strip(self._session.call({"op": "stats"}))

    def _start_count(
        self, files: Iterable[PathArg], terms: Iterable[TermArg], opts: CountOptions, progress: bool
    ) -> CountQuery:
        msg, originals = opts.request(files, terms)
        return CountQuery(self._session, msg, originals, progress)
