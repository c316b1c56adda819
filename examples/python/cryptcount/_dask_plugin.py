"""The worker side of cryptcount.dask: one `cryptcount serve` per Dask worker, and the batch tasks.

:class:`CryptCountPlugin` keeps the coprocess for the worker's lifetime (restarted if it dies),
unlocks each query's sealed keys in it once, runs each batch as one ``count`` request and sends
back plain rows; the client-side query (``_dask_query``) turns the rows into results.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from distributed import WorkerPlugin, get_worker

from ._client import Coprocess, CountQuery
from ._sealing import Unlock
from ._transport import find_binary
from ._types import FileResult
from .errors import CoprocessDied, CryptCountError, RequestError

#: The name the worker plugin is registered under.
PLUGIN_NAME = "cryptcount"

# How many finished query ids a worker remembers (a late task of an ended query must not run).
_ENDED_MEMORY = 4096
_FORGET_TIMEOUT = 10.0


class CoprocessLost(RuntimeError):
    """A worker's coprocess died during a batch; Dask retries the batch (``retries=``)."""




class _Batch:
    """One task's work. Its repr (which Dask may log) names the batch only."""

    __slots__ = ("plugin", "qid", "number", "start", "paths", "terms", "options", "unlocks", "keep")

    def __init__(
        self,
        plugin: str,
        qid: str,
        number: int,
        start: int,
        paths: List[Union[str, bytes]],
        terms: List[Union[str, bytes]],
        options: Dict[str, Any],
        unlocks: Tuple[Unlock, ...],
        keep: bool = False,
    ) -> None:
        self.plugin = plugin
        self.qid = qid
        self.number = number
        self.start = start
        self.paths = paths
        self.terms = terms
        self.options = options
        self.unlocks = unlocks
        self.keep = keep  # the caller keeps the keys unlocked: no forgetting them when idle

    def __getstate__(self) -> Any:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, state: Any) -> None:
        for name, value in zip(self.__slots__, state):
            setattr(self, name, value)

    def __repr__(self) -> str:
        return f"<cryptcount batch {self.number} of query {self.qid}: {len(self.paths)} files>"


# One file's answer as it travels back: (index in the caller's files, counts, bytes, cached,
# words, offsets, snippets, truncated, error code, error message, cipher).
Row = Tuple[Any, ...]


def row(r: FileResult, start: int) -> Row:
    err = r.error
    return (
        start + r.index, r.counts, r.bytes, r.cached, r.words, r.offsets, r.snippets, r.truncated,
        None if err is None else err.code, None if err is None else err.message, r.cipher,
    )  # fmt: skip


def _alive(cc: Optional[Coprocess]) -> bool:
    return cc is not None and cc.alive


# -- the worker side -----------------------------------------------------------------------


class CryptCountPlugin(WorkerPlugin):
    """Keeps one `cryptcount serve` per Dask worker, from the worker's start to its end.

    ``binary``: the executable's path *on the workers* (None: each worker's $CRYPTCOUNT_BIN or
    PATH). ``workers``/``args``/``env``: as for :class:`~cryptcount.Coprocess` (e.g.
    ``args=("--allow-root", "/data")``). ``forget_idle``: seconds after which a worker forgets,
    by itself, a key of a query that never ended (its client died) and that no batch has used
    since (None: never; keys kept with ``keep_unlocked`` are not affected). ``idempotent=True``:
    registering does nothing where a plugin of this name already exists.
    """

    name = PLUGIN_NAME

    def __init__(
        self,
        binary: Union[str, "os.PathLike[str]", None] = None,
        workers: Optional[int] = None,
        args: Sequence[Union[str, "os.PathLike[str]"]] = (),
        *,
        env: Optional[Mapping[str, str]] = None,
        forget_idle: Optional[float] = 600.0,
        idempotent: bool = False,
    ) -> None:
        self.binary = None if binary is None else os.fspath(binary)
        self.forget_idle = forget_idle
        self.workers = workers
        self.args = tuple(os.fspath(a) for a in args)
        self.env = None if env is None else dict(env)
        self.idempotent = idempotent
        self._init_worker_state()

    def _init_worker_state(self) -> None:
        self._lock = threading.RLock()  # end_query may run inside _forget_idle
        self._cc: Optional[Coprocess] = None
        self._unlocked: Dict[str, str] = {}  # key name -> token of the key held under it
        self._active: Dict[str, Set[CountQuery]] = {}  # query id -> its running count requests
        self._running: Dict[str, int] = {}  # query id -> batches past their start on this worker
        self._ended: "OrderedDict[str, None]" = OrderedDict()
        self._started = 0
        self._unlocks = 0
        self._last_used: Dict[str, float] = {}  # keys to forget when idle -> last batch's end
        self._sweeper: Any = None
        #: Recent batches on this worker: (query id, batch number, cancelled, files, skipped).
        self.batches: Deque[Tuple[str, int, bool, int, int]] = deque(maxlen=256)

    # The client pickles the plugin once per worker; only the configuration travels.
    def __getstate__(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in ("binary", "workers", "args", "env", "forget_idle", "idempotent")}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_worker_state()

    async def setup(self, worker: Any) -> None:
        await asyncio.to_thread(self.coprocess)
        if self.forget_idle is not None:
            from tornado.ioloop import PeriodicCallback

            self._sweeper = PeriodicCallback(self._sweep, max(0.05, min(self.forget_idle / 2, 30.0)) * 1000)
            self._sweeper.start()

    async def teardown(self, worker: Any) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
        await asyncio.to_thread(self._shutdown)

    async def _sweep(self) -> None:
        if self._last_used and not self._running:
            await asyncio.to_thread(self._forget_idle)

    def _forget_idle(self) -> None:
        limit = self.forget_idle
        with self._lock:  # a batch counts as running from before its unlock: checked under the lock
            if limit is None or self._running:
                return
            now = time.monotonic()
            idle = [(name, None) for name, used in self._last_used.items() if now - used > limit]
            if idle:
                self.end_query("", idle)

    def _shutdown(self) -> None:
        with self._lock:
            cc, self._cc = self._cc, None
            self._unlocked.clear()
            self._last_used.clear()
        if cc is not None:
            cc.close(timeout=2.0)

    def _live(self) -> Coprocess:
        """The running coprocess, started (again) if needed. Call with the lock held."""
        if not _alive(self._cc):
            old, self._cc = self._cc, None
            self._unlocked.clear()  # its keys died with it
            self._last_used.clear()
            if old is not None:
                old.close(timeout=0.5)
            self._cc = Coprocess(find_binary(self.binary), self.workers, self.args, env=self.env)
            self._started += 1
        assert self._cc is not None
        return self._cc

    def coprocess(self) -> Coprocess:
        """This worker's coprocess (started if it is not running)."""
        with self._lock:
            return self._live()

    def run_batch(self, batch: _Batch) -> Tuple[Any, ...]:
        qid = batch.qid
        with self._lock:
            if qid in self._ended:
                return ("ended",)
            try:
                cc = self._live()
            except CoprocessDied as exc:
                raise CoprocessLost(str(exc)) from None
            # Counted as running from here (cluster_status shows it): from now on the batch
            # uses this coprocess.
            self._running[qid] = self._running.get(qid, 0) + 1
            try:
                for u in batch.unlocks:
                    if self._unlocked.get(u.name) != u.token:
                        cc.unlock(u.name, u.cipher, u.secret.reveal(), **dict(u.options))
                        self._unlocked[u.name] = u.token
                        self._unlocks += 1
                    self._touch(u.name, batch.keep)
                query = cc.count(batch.paths, batch.terms, **batch.options)
                self._active.setdefault(qid, set()).add(query)
            except RequestError as exc:
                self._stopped(qid)
                return ("request_error", exc.code, exc.message)
            except CoprocessDied as exc:
                self._stopped(qid)
                raise CoprocessLost(str(exc)) from None
            except BaseException:
                self._stopped(qid)
                raise
        try:
            rows = [row(r, batch.start) for r in query]
            done = query.summary
        except RequestError as exc:
            return ("request_error", exc.code, exc.message)
        except CoprocessDied as exc:
            raise CoprocessLost(str(exc)) from None
        finally:
            with self._lock:
                running = self._active.get(qid)
                if running is not None:
                    running.discard(query)
                    if not running:
                        del self._active[qid]
                self._stopped(qid)
                for u in batch.unlocks:
                    self._touch(u.name, batch.keep)
            query.close()
        self.batches.append((qid, batch.number, done.cancelled, done.files, done.skipped))
        if done.cancelled:
            return ("cancelled",)
        return ("ok", rows)

    def _touch(self, name: str, keep: bool) -> None:
        if keep:
            self._last_used.pop(name, None)
        elif name in self._unlocked:
            self._last_used[name] = time.monotonic()

    def _stopped(self, qid: str) -> None:
        left = self._running.get(qid, 0) - 1
        if left > 0:
            self._running[qid] = left
        else:
            self._running.pop(qid, None)

    def end_query(self, qid: str, forget: Sequence[Tuple[str, Optional[str]]]) -> List[str]:
        """Cancel the query's running requests here and forget its keys; returns the names forgotten.

        ``forget``: (name, token) pairs; a name is forgotten only if it still holds that key
        (token None: whatever key it holds).
        """
        forgotten = []
        with self._lock:
            if qid:
                self._ended[qid] = None
            while len(self._ended) > _ENDED_MEMORY:
                self._ended.popitem(last=False)
            for query in self._active.pop(qid, ()):
                query.cancel()
            cc = self._cc
            for name, token in forget:
                if name not in self._unlocked or (token is not None and self._unlocked[name] != token):
                    continue
                del self._unlocked[name]
                self._last_used.pop(name, None)
                if _alive(cc):
                    assert cc is not None
                    try:
                        cc.forget(name, timeout=_FORGET_TIMEOUT)
                    except (CryptCountError, TimeoutError):
                        pass  # gone, or it will be when the coprocess exits
                forgotten.append(name)
        return forgotten

    def status(self) -> Dict[str, Any]:
        # Without the lock (a batch may hold it while its coprocess is busy); copies of the
        # dicts are atomic under the GIL.
        cc = self._cc
        return {
            "pid": os.getpid(),
            "coprocess_pid": cc.pid if cc is not None else None,
            "coprocess_alive": _alive(cc),
            "coprocess_starts": self._started,
            "unlocks": self._unlocks,
            "unlocked": sorted(dict(self._unlocked)),
            "running": dict(self._running),
            "requests": {qid: len(qs) for qid, qs in dict(self._active).items()},
            "batches": list(self.batches),
        }


def _plugin_of(worker: Any, name: str) -> CryptCountPlugin:
    plugin = worker.plugins.get(name)
    if not isinstance(plugin, CryptCountPlugin):
        raise RuntimeError(
            f"no cryptcount plugin {name!r} on this worker: call cryptcount.dask.register(client, ...)"
        )
    return plugin


def _run_batch(batch: _Batch) -> Tuple[Any, ...]:
    return _plugin_of(get_worker(), batch.plugin).run_batch(batch)


async def _end_query(
    plugin_name: str, qid: str, forget: Sequence[Tuple[str, Optional[str]]], dask_worker: Any = None
) -> Optional[List[str]]:
    plugin = dask_worker.plugins.get(plugin_name) if dask_worker is not None else None
    if not isinstance(plugin, CryptCountPlugin):
        return None
    return await asyncio.to_thread(plugin.end_query, qid, forget)


def _status(plugin_name: str, dask_worker: Any = None) -> Optional[Dict[str, Any]]:
    plugin = dask_worker.plugins.get(plugin_name) if dask_worker is not None else None
    return plugin.status() if isinstance(plugin, CryptCountPlugin) else None


def _has_plugin(plugin_name: str, dask_scheduler: Any = None) -> bool:
    return plugin_name in getattr(dask_scheduler, "worker_plugins", {})
