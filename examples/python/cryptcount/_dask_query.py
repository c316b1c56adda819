"""The client side of a cluster query: Dask futures of batches in, FileResults and a Summary out."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from distributed import Client, Future, as_completed

from ._dask_plugin import Row, _Batch, _end_query, _run_batch
from ._query import SyncQuery
from ._types import FileError, FileResult, Summary
from .errors import CryptCountError, RequestError


class ClusterQuery(SyncQuery):
    """A count running on a Dask cluster: iterate it for :class:`~cryptcount.FileResult`.

    Mirrors :class:`~cryptcount.CountQuery`: ``summary``/``wait()``, ``results()``, ``done``,
    ``cancel()`` (outstanding Dask futures and the workers' coprocess requests are cancelled; the
    results already received are still yielded, and the summary says ``cancelled``), ``close()``
    (the same, dropping unread results). Breaking out of a ``for`` loop over it, leaving its
    ``with`` block or dropping it closes it.

    At most ``max_in_flight`` batches are submitted and not yet taken at any time: a batch is
    made and submitted only when one has finished, so neither this process nor the scheduler
    holds more than that many batches' paths, tasks or results, however long the query.
    """

    def __init__(
        self,
        client: Client,
        originals: List[Any],
        batches: Iterator[_Batch],
        *,
        max_in_flight: int,
        qid: str,
        forget: Sequence[Tuple[str, Optional[str]]],
        retries: int,
        ordered: bool,
        n_terms: int,
        words: bool,
        progress: bool,
        key_name: Optional[str],
        plugin_name: str,
    ) -> None:
        self._init_query(originals, progress)
        self.id = qid
        #: The name the secret is unlocked under on the workers (with ``cipher=``/``secret=``).
        self.key_name = key_name
        self._client = client
        self._plugin = plugin_name
        self._forget = tuple(forget)
        self._ordered = ordered
        self._lock = threading.RLock()
        self._held: Dict[int, List[Row]] = {}  # ordered: batches that arrived early
        self._next_batch = 0
        self._seen = bytearray(len(originals))
        self._produced = 0
        self._failed = 0
        self._counts = [0] * n_terms
        self._words: Optional[int] = 0 if words else None
        self._cancelled = False
        self._t0 = time.perf_counter()
        self._pending: Dict[Any, int] = {}
        self._futures: Dict[Any, Future[Any]] = {}
        self._batches = batches  # made on demand: only the ones in flight exist
        self._retries = retries
        self._completed = as_completed(  # type: ignore[no-untyped-call]
            [], loop=client.loop, with_results=True, raise_errors=False
        )
        #: The most batches that were in flight at once (submitted, not yet taken).
        self.max_in_flight = max_in_flight
        self.peak_in_flight = 0
        self._finished = False
        with self._lock:
            self._submit(max_in_flight)
            if not self._pending:
                self._end()

    def _submit(self, n: int) -> None:
        """(Under the lock.) Submit up to ``n`` further batches."""
        for _ in range(n):
            if self._finished:
                return
            batch = next(self._batches, None)
            if batch is None:
                return
            future: Future[Any] = self._client.submit(
                _run_batch, batch, key=f"cryptcount-{self.id}-{batch.number}", pure=False, retries=self._retries
            )  # fmt: skip
            self._pending[future.key] = batch.number
            self._futures[future.key] = future
            self._completed.add(future)  # type: ignore[no-untyped-call]
            self.peak_in_flight = max(self.peak_in_flight, len(self._pending))

    # -- receiving -----------------------------------------------------------------------

    def _receive(self) -> None:
        """Wait for the next batch to finish and take its rows (or end the query)."""
        try:
            future, result = next(self._completed)
        except StopIteration:
            with self._lock:
                if not self._finished:
                    self._complete()
            return
        with self._lock:
            self._futures.pop(future.key, None)
            number = self._pending.pop(future.key, None)
            if self._finished or number is None:
                return
            status = future.status
            if status == "finished" and result[0] == "ok":
                self._accept(number, result[1])
            elif status == "finished" and result[0] == "request_error":
                self._fail(RequestError(str(result[1]), str(result[2])))
            elif status == "finished":
                self._fail(CryptCountError(f"batch {number} was cancelled on its worker ({result[0]})"))
            elif status == "error":
                self._fail(result[1])
            else:
                self._fail(CryptCountError(f"batch {number} was cancelled outside this query ({status})"))
            if not self._finished:
                self._submit(1)  # one out, one in
                if not self._pending:
                    self._complete()

    def _accept(self, number: int, rows: List[Row]) -> None:
        if not self._ordered:
            self._emit(rows)
            return
        self._held[number] = rows
        while self._next_batch in self._held:
            self._emit(self._held.pop(self._next_batch))
            self._next_batch += 1

    def _emit(self, rows: List[Row]) -> None:
        n = len(self._originals)
        before = self._produced
        for row in rows:
            i, counts, nbytes, cached, words, offsets, snippets, truncated, code, message, cipher = row
            if not (isinstance(i, int) and 0 <= i < n) or self._seen[i]:
                continue  # never report a file twice
            self._seen[i] = 1
            error = None if code is None else FileError(str(code), str(message))
            r = FileResult(i, self._originals[i], list(counts or []), int(nbytes or 0), bool(cached), words,
                           offsets, snippets, bool(truncated), error, cipher)  # fmt: skip
            self._buffer.append(r)
            self._produced += 1
            if error is not None:
                self._failed += 1
                continue
            for t, c in enumerate(r.counts[: len(self._counts)]):
                self._counts[t] += c
            if self._words is not None and isinstance(words, int):
                self._words += words
        if self._bar is not None:
            self._bar.update(self._produced - before)

    def _complete(self) -> None:
        if self._produced != len(self._originals):
            self._fail(CryptCountError(f"{len(self._originals) - self._produced} files got no result"))
            return
        self._end()

    # -- ending --------------------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        self._cancel_futures()
        self._end(error)

    def _cancel_futures(self) -> None:
        self._batches = iter(())  # submit no more
        futures = list(self._futures.values())
        self._futures = {}
        self._pending = {}
        if futures:
            try:
                self._client.cancel(futures)  # type: ignore[no-untyped-call]
            except Exception:
                pass  # the client is closing: its futures go with it

    def _end(self, error: Optional[BaseException] = None) -> None:
        self._finish(
            Summary(
                files=self._produced,
                failed=self._failed,
                skipped=len(self._originals) - self._produced,
                counts=list(self._counts),
                words=self._words,
                elapsed_us=int((time.perf_counter() - self._t0) * 1e6),
                cancelled=self._cancelled,
            ),
            error,
        )

    def _on_finish(self) -> None:
        # Cancel this query's requests in the coprocesses, refuse its late tasks, forget its keys.
        try:
            self._client.run(_end_query, self._plugin, self.id, self._forget, on_error="ignore")
        except Exception:
            pass  # the client or cluster is gone: so are the coprocesses and their keys

    def _send_cancel(self) -> None:
        # Cancelled here and now: outstanding batches are dropped, the summary says so.
        with self._lock:
            if self._finished:
                return
            self._cancelled = True
            self._cancel_futures()
            self._end()

    _abandon = _send_cancel

    def close(self) -> None:
        """Cancel if unfinished and drop unread results."""
        with self._lock:
            if not getattr(self, "_closed", True):
                self._buffer.clear()
                self._held.clear()
        super().close()

    def __enter__(self) -> "ClusterQuery":
        return self

    def __del__(self) -> None:
        # Never block here (this may run on Dask's event loop): clean up from a short-lived thread.
        if not getattr(self, "_finished", True):
            try:
                threading.Thread(target=self.close, daemon=True).start()
            except Exception:
                pass
