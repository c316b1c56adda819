"""Layer 4, the public thread-based API: :class:`Coprocess` and :class:`CountQuery`."""

from __future__ import annotations

import os
import queue
import subprocess
from collections import deque
from types import TracebackType
from typing import Any, Deque, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Type, Union

from ._session import Death, Session
from ._transport import Transport, find_binary
from ._types import FileResult, PathArg, Summary, TermArg, build_count, file_result, strip, summary
from .errors import CryptCountError, ProtocolError, RequestError

SUPPORTED_PROTOCOL = 1


def _progress_bar(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="file", desc="cryptcount")


class _QueryState:
    """What the sync and asyncio queries share: turning responses into results and a summary."""

    id: int

    def _init_state(self, session: Session, originals: List[Any], progress: bool) -> None:
        self._session = session
        self._originals = originals
        self._buffer: Deque[FileResult] = deque()
        self._summary: Optional[Summary] = None
        self._error: Optional[BaseException] = None
        self._finished = True  # until the request has been sent
        self._closed = False
        self._cancel_sent = False
        self._bar = _progress_bar(progress, len(originals))

    def _started(self, rid: int) -> None:
        self.id = rid
        self._finished = False
        self._session.active_counts.add(rid)

    def _handle(self, msg: Any) -> None:
        if isinstance(msg, Death):
            self._finish(error=msg.error)
            return
        kind = msg.get("type")
        if kind == "file":
            self._buffer.append(file_result(msg, self._originals))
            if self._bar is not None:
                self._bar.update(1)
        elif kind == "files":  # results grouped by the opt-in `batch` request key
            for item in msg.get("results") or ():
                if isinstance(item, dict) and item.get("type") == "file":
                    self._handle(item)
        elif kind == "done":
            self._finish(summary=summary(msg))
        elif kind == "error":
            self._finish(error=RequestError(str(msg.get("code")), str(msg.get("message", "")), msg.get("id")))
        elif kind in ("hello", "ok", "stats"):
            self._finish(error=ProtocolError(f"the coprocess answered a count with {kind!r}"))
        # Other (future) non-terminal types are ignored.

    def _finish(self, summary: Optional[Summary] = None, error: Optional[BaseException] = None) -> None:
        self._finished = True
        self._summary = summary
        self._error = error
        self._session.active_counts.discard(getattr(self, "id", -1))
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _result(self) -> Summary:
        if self._error is not None:
            raise self._error
        if self._summary is None:
            raise CryptCountError("the query was closed before it finished")
        return self._summary

    @property
    def done(self) -> bool:
        """True once the query has finished (done, error, or closed)."""
        return self._finished

    def cancel(self) -> None:
        """Ask the coprocess to stop; the query still ends with a summary (``cancelled=True``)."""
        if not self._finished and not self._cancel_sent:
            self._cancel_sent = True
            self._session.send_nowait({"op": "cancel", "target": self.id})

    def close(self) -> None:
        """Cancel the query if it is unfinished and drop its unread results. Never blocks."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        if not self._finished:
            self._session.detach(self.id)
            if not self._cancel_sent:
                self._cancel_sent = True
                self._session.send_nowait({"op": "cancel", "target": self.id})
            self._buffer.clear()
            self._finish()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class CountQuery(_QueryState):
    """A running ``count``: iterate it for :class:`FileResult` objects as they arrive.

    Breaking out of a ``for`` loop over it, leaving its ``with`` block, calling :meth:`close` or
    dropping the last reference to it cancels it in the coprocess if it is unfinished.
    """

    def __init__(self, session: Session, msg: Dict[str, Any], originals: List[Any], progress: bool) -> None:
        self._init_state(session, originals, progress)
        self._box: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        try:
            rid = session.start(msg, self._box.put)
        except BaseException:
            self._closed = True
            self._finish()
            raise
        self._started(rid)

    def _receive(self) -> None:
        self._handle(self._box.get())

    def __iter__(self) -> Iterator[FileResult]:
        return self._iterate()

    def _iterate(self) -> Iterator[FileResult]:
        try:
            while True:
                while self._buffer:
                    yield self._buffer.popleft()
                if self._finished:
                    if self._error is not None:
                        raise self._error
                    return
                self._receive()
        finally:
            if not self._finished:
                self.close()

    def wait(self) -> Summary:
        """Block until the query has finished; unread results stay available to iteration."""
        while not self._finished:
            self._receive()
        return self._result()

    @property
    def summary(self) -> Summary:
        """The totals (blocks until the query has finished)."""
        return self.wait()

    def results(self) -> List[FileResult]:
        """All (remaining) results, in arrival order, once the query has finished."""
        return list(self)

    def __enter__(self) -> "CountQuery":
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()


class Coprocess:
    """One `cryptcount serve` child, shared safely by any number of threads.

    ``binary``: the executable (default: $CRYPTCOUNT_BIN, else the one bundled in
    the package, else `cryptcount` on PATH).
    ``workers``: passed as ``--workers N``. ``args``: further `serve` options
    (e.g. ``("--cache-mb", "64", "--allow-root", "/data")``).
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
    ) -> None:
        self._closed = True
        argv = [find_binary(binary), "serve"]
        if workers is not None:
            argv += ["--workers", str(int(workers))]
        argv += [os.fspath(a) for a in args]
        self._transport = Transport(argv, env=env, cwd=cwd)
        self._session = Session(self._transport)
        self._closed = False
        try:
            info = self._session.call({"op": "hello"}, timeout=start_timeout)
            if info.get("protocol") != SUPPORTED_PROTOCOL:
                raise ProtocolError(f"the coprocess speaks protocol {info.get('protocol')!r}, not 1")
        except BaseException:
            self.close(timeout=1.0)
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

    def stderr_tail(self) -> str:
        """The last lines the coprocess wrote to stderr."""
        return self._transport.stderr_tail.text()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel unfinished queries, send ``shutdown``, wait for the exit, terminate if it must."""
        if self._closed:
            return
        self._closed = True
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
                session.call({"op": "shutdown"}, timeout=timeout)
            except (CryptCountError, TimeoutError):
                pass
        self._transport.close_stdin()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=1.0)
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
        msg: Dict[str, Any] = {"op": "unlock", "name": name, "cipher": cipher}
        if secret is not None:
            msg["secret"] = secret
        msg.update(options)
        self._session.call(msg)

    def forget(self, name: str) -> None:
        """Drop a key and every cached plaintext decrypted with it."""
        self._session.call({"op": "forget", "name": name})

    def stats(self) -> Dict[str, Any]:
        return strip(self._session.call({"op": "stats"}))

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
    ) -> CountQuery:
        """Start a count; returns at once. Request errors are raised when the query is read.

        ``regex=True``: every term is a regular expression, counted as ``rg --count-matches``
        (servers whose ``hello()["features"]`` lists ``"regex"``)."""
        if regex:
            options["regex"] = True
        msg, originals = build_count(
            files, terms, key, cipher, secret, ignore_case, whole_word, offsets, max_offsets, context, words,
            ordered, options,
        )  # fmt: skip
        return CountQuery(self._session, msg, originals, progress)
