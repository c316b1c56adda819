"""The query lifecycle, written once: results buffered as they arrive, one ending (a summary or an
error), ``done``, ``cancel``, ``close`` and cleanup when dropped.

What differs between queries is small and supplied by subclasses: the *receive step* (take the
next response and turn it into results or the ending: a blocking queue for :class:`CountQuery`,
an asyncio queue for :class:`AsyncCountQuery`, finished Dask futures for ``ClusterQuery``), how
to ask for a cancel, and what to do when abandoned. :class:`SyncQuery` adds the blocking
iteration, ``wait``/``summary`` and ``with``; the asyncio query adds their ``await`` forms.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType
from typing import Any, Deque, Dict, Iterator, List, Optional, Type

from ._session import Death, Session, Sink
from ._types import FileResult, Summary, compact_file_result, file_result, summary
from .errors import CryptCountError, ProtocolError, RequestError


def progress_bar(enabled: bool, total: int) -> Any:
    """A tqdm bar when asked for and tqdm is installed, else None."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="file", desc="cryptcount")


class _Closed:
    """Put in a closed query's receive queue: wakes a thread or task blocked on it, which then
    finds the query finished."""


CLOSED = _Closed()


class Query:
    """State and ending shared by every query. Subclasses call :meth:`_init_query` first."""

    id: Any

    def _init_query(self, originals: List[Any], progress: bool) -> None:
        self._originals = originals
        self._buffer: Deque[FileResult] = deque()
        self._summary: Optional[Summary] = None
        self._error: Optional[BaseException] = None
        self._finished = True  # until the work has been started
        self._closed = False
        self._cancel_sent = False
        self._bar = progress_bar(progress, len(originals)) if progress else None
        # One receive step at a time (SyncQuery): two threads reading one query (an iteration and
        # a `wait`, say) would both block for its last response, and only one would get it.
        self._receiving = threading.Lock()

    # -- hooks -----------------------------------------------------------------------------

    def _send_cancel(self) -> None:
        """Ask whatever runs the query to stop (at most once, only while unfinished)."""
        raise NotImplementedError

    def _abandon(self) -> None:
        """Stop an unfinished query whose results nobody will read; must not block."""
        raise NotImplementedError

    def _on_finish(self) -> None:
        """Called once the query has its ending."""

    # -- ending ----------------------------------------------------------------------------

    def _finish(self, summary: Optional[Summary] = None, error: Optional[BaseException] = None) -> None:
        self._finished = True
        self._summary = summary
        self._error = error
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._on_finish()

    def _result(self) -> Summary:
        if self._error is not None:
            raise self._error
        if self._summary is None:
            raise CryptCountError("the query was closed before it finished")
        return self._summary

    @property
    def done(self) -> bool:
        """True once the query has finished (done, error, cancelled or closed)."""
        return self._finished

    def cancel(self) -> None:
        """Ask for the query to stop; it still ends with a summary (``cancelled=True``)."""
        if not self._finished and not self._cancel_sent:
            self._cancel_sent = True
            self._send_cancel()

    def close(self) -> None:
        """Cancel the query if it is unfinished and drop its unread results. Never blocks."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        if not self._finished:
            self._abandon()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class SyncQuery(Query):
    """A query read by blocking: iterate it for :class:`FileResult` objects as they arrive."""

    def _receive(self) -> None:
        """Block for the next response and take it (results into the buffer, or the ending)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[FileResult]:
        return self._iterate()

    def _iterate(self) -> Iterator[FileResult]:
        try:
            while True:
                while self._buffer:
                    yield self._buffer.popleft()
                if self._finished:
                    # Its error, or that it was closed (by another thread, say) before it
                    # finished: a loop never ends as if every result had come.
                    self._result()
                    return
                with self._receiving:
                    if not self._finished and not self._buffer:
                        self._receive()
        finally:
            if not self._finished:
                self.close()

    def wait(self) -> Summary:
        """Block until the query has finished; unread results stay available to iteration."""
        while not self._finished:
            with self._receiving:
                if not self._finished:
                    self._receive()
        return self._result()

    @property
    def summary(self) -> Summary:
        """The totals (blocks until the query has finished)."""
        return self.wait()

    def results(self) -> List[FileResult]:
        """All (remaining) results, in arrival order, once the query has finished."""
        return list(self)

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()


class CoprocessQuery(Query):
    """A ``count`` request in one coprocess: its responses, routed by the session, become results.

    The sync and asyncio queries differ only in the sink that carries responses to their receive
    step; the sink must not reference the query, or a pending request would keep it alive.
    """

    id: Any = None  # until the request has been sent

    def _start(self, session: Session, msg: Dict[str, Any], sink: Sink, owned: bool = False) -> None:
        self._session = session
        try:
            rid = session.start(msg, sink, owned)
        except BaseException:
            self._closed = True
            self._finish()
            raise
        self.id = rid
        self._finished = False
        session.active_counts.add(rid)

    def _handle(self, msg: Any) -> None:
        if msg is CLOSED or self._finished:
            return
        if isinstance(msg, Death):
            self._finish(error=msg.error)
            return
        try:
            self._take(msg)
        except ProtocolError as e:
            # A response the driver cannot read ends the query with that error (the results
            # before it stay readable); the coprocess is asked to stop the request.
            self._session.detach(self.id)
            self._finish(error=e)
            self._cancel_sent = True
            self._send_cancel()

    def _add(self, result: FileResult) -> None:
        self._buffer.append(result)
        if self._bar is not None:
            self._bar.update(1)

    def _take(self, msg: Dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "file":
            self._add(file_result(msg, self._originals))
        elif kind == "files":  # results grouped by the `batch` and `compact` request keys
            for item in msg.get("results") or ():
                if type(item) is list:
                    self._add(compact_file_result(item, self._originals))
                elif isinstance(item, dict) and item.get("type") == "file":
                    self._add(file_result(item, self._originals))
        elif kind == "done":
            self._finish(summary=summary(msg))
        elif kind == "error":
            code = msg.get("code")
            if not isinstance(code, str):
                raise ProtocolError(f"an error response without a code: {msg!r}")
            self._finish(error=RequestError(code, str(msg.get("message", "")), msg.get("id")))
        elif kind in ("hello", "ok", "stats"):
            self._finish(error=ProtocolError(f"the coprocess answered a count with {kind!r}"))
        # Other (future) non-terminal types are ignored.

    def _on_finish(self) -> None:
        self._session.active_counts.discard(self.id)

    def _send_cancel(self) -> None:
        self._session.send_nowait({"op": "cancel", "target": self.id})

    def _wake(self) -> None:
        """Wake whoever waits in the receive step (put :data:`CLOSED` where it waits); must not
        block."""

    def _abandon(self) -> None:
        self._session.detach(self.id)
        self._buffer.clear()
        self._finish()
        # Detached, no response reaches the receive step any more: a `wait` or iteration blocked
        # there (another thread, another task) would wait forever, so wake it. Wake first, then
        # cancel (again, if it was already sent: the cancel is always answered `ok`): a thread
        # blocked reading the coprocess's output sees the wake-up once that answer arrives.
        # Woken after the cancel, it could read the answer first and block in the next read.
        self._wake()
        self._cancel_sent = True
        self._send_cancel()
