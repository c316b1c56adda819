"""Run cryptcount queries on a Dask cluster: one `cryptcount serve` per Dask worker.

    from distributed import Client
    from cryptcount.dask import count_on_cluster

    client = Client("tcp://scheduler:8786")
    query = count_on_cluster(client, paths, ["rain"], cipher="biographer", secret=password)
    for r in query:              # FileResults (r.index is the position in `paths`), batch by batch
        ...
    print(query.summary)         # the same fields as a local query's Summary

Which parts run where:

- client (your program): splits ``files`` into batches, submits one Dask task per batch, turns
  the batches' rows back into :class:`~cryptcount.FileResult` objects (``path`` is the object
  you passed), adds up the :class:`~cryptcount.Summary`, and at the end asks every worker to
  forget the query's keys.
- each Dask worker: :class:`CryptCountPlugin` keeps one `cryptcount serve` child for the
  worker's lifetime (restarted if it dies) and closes it when the worker stops. A batch task
  unlocks the query's keys in it once (per worker and query), sends the batch as one ``count``
  request, and returns the per-file rows.
- the scheduler: only Dask's bookkeeping. It holds the task arguments (including the sealed
  secret) in memory until the task is done; Dask never writes task arguments to disk.

Retries are Dask's: a batch whose worker dies is rescheduled on another worker by the scheduler;
a batch whose coprocess dies under a living worker fails with :class:`CoprocessLost` and is
retried (``retries=``). A batch's rows are taken only from the future that completed, so each
file is reported exactly once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from types import TracebackType
from typing import (
    Any,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    Union,
)

import msgpack

try:
    from distributed import Client, Future, WorkerPlugin, as_completed, get_worker
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "cryptcount.dask needs Dask's distributed scheduler: pip install './examples/python[dask]' "
        "(or: pip install dask distributed)"
    ) from exc

from ._client import Coprocess, CountQuery, _progress_bar
from ._transport import find_binary
from ._types import FileError, FileResult, PathArg, Summary, TermArg, absolute_path, wire_path, wire_term
from .errors import BinaryNotFound, CoprocessDied, CryptCountError, RequestError

__all__ = [
    "PLUGIN_NAME",
    "ClusterQuery",
    "CoprocessLost",
    "CryptCountPlugin",
    "cluster_status",
    "count_on_cluster",
    "forget_on_cluster",
    "register",
]

#: The name the worker plugin is registered under.
PLUGIN_NAME = "cryptcount"

# Cipher options that belong to the key when the secret is unlocked (protocol section 6).
_KEY_OPTIONS = ("iter", "ttl")
# How many finished query ids a worker remembers (a late task of an ended query must not run).
_ENDED_MEMORY = 4096
_FORGET_TIMEOUT = 10.0


class CoprocessLost(RuntimeError):
    """A worker's coprocess died during a batch; Dask retries the batch (``retries=``)."""


class _Sealed:
    """A secret on its way to the workers: it pickles (Dask sends it in memory) but never prints."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def reveal(self) -> Any:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__

    # A tuple: a false state (say an empty secret) would skip __setstate__.
    def __getstate__(self) -> Any:
        return (self._value,)

    def __setstate__(self, state: Any) -> None:
        self._value = state[0]


# Tokens are keyed with a salt that never leaves this process: equal for an equal key (so a
# worker holding it need not unlock it again), and saying nothing about the secret.
_TOKEN_SALT = os.urandom(32)


def _token(cipher: str, secret: Any, options: Tuple[Tuple[str, Any], ...]) -> str:
    try:
        material = msgpack.packb([cipher, secret, [list(o) for o in options]], use_bin_type=True)
    except (TypeError, ValueError):
        return uuid.uuid4().hex  # not serialisable here: the coprocess will say what is wrong
    return hmac.new(_TOKEN_SALT, material, hashlib.sha256).hexdigest()


class _Unlock(NamedTuple):
    name: str
    token: str  # _token(...): a worker unlocks a name again only when it held another key under it
    cipher: str
    secret: _Sealed
    options: Tuple[Tuple[str, Any], ...]


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
        unlocks: Tuple[_Unlock, ...],
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
_Row = Tuple[Any, ...]


def _row(r: FileResult, start: int) -> _Row:
    err = r.error
    return (
        start + r.index, r.counts, r.bytes, r.cached, r.words, r.offsets, r.snippets, r.truncated,
        None if err is None else err.code, None if err is None else err.message, r.cipher,
    )  # fmt: skip


def _alive(cc: Optional[Coprocess]) -> bool:
    return cc is not None and not cc.closed and not cc._session.dead and cc.returncode is None


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
            rows = [_row(r, batch.start) for r in query]
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
                        cc._session.call({"op": "forget", "name": name}, timeout=_FORGET_TIMEOUT)
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


# -- the client side -----------------------------------------------------------------------


def register(
    client: Client,
    binary: Union[str, "os.PathLike[str]", None] = None,
    workers: Optional[int] = None,
    args: Sequence[Union[str, "os.PathLike[str]"]] = (),
    *,
    env: Optional[Mapping[str, str]] = None,
    forget_idle: Optional[float] = 600.0,
    replace: bool = True,
    name: str = PLUGIN_NAME,
) -> None:
    """Start a coprocess on every worker of ``client``'s cluster, and on every worker that joins.

    ``binary`` is the executable's path on the workers (None: each worker's $CRYPTCOUNT_BIN or
    PATH). ``forget_idle``: see :class:`CryptCountPlugin`. ``replace=False`` keeps a plugin
    already registered under ``name``.
    """
    plugin = CryptCountPlugin(binary, workers, args, env=env, forget_idle=forget_idle, idempotent=not replace)
    client.register_plugin(plugin, name=name)


def cluster_status(client: Client, name: str = PLUGIN_NAME) -> Dict[str, Optional[Dict[str, Any]]]:
    """Per worker address: the worker's pid, its coprocess's pid and liveness, the key names it
    holds, the queries with batches running there (``running``: batches started, ``requests``:
    count requests in its coprocess) and recent batches (None where the plugin is missing)."""
    return client.run(_status, name)  # type: ignore[no-any-return]


def forget_on_cluster(client: Client, key_name: str, name: str = PLUGIN_NAME) -> None:
    """Forget a key kept with ``keep_unlocked=True`` on every worker."""
    client.run(_end_query, name, f"forget-{uuid.uuid4().hex}", [(key_name, None)], on_error="ignore")


def _absolute(path: PathArg) -> Union[str, bytes]:
    # Workers have their own working directories: relative paths are the client's, at call time.
    return wire_path(absolute_path(path))


def count_on_cluster(
    client: Client,
    files: Iterable[PathArg],
    terms: Iterable[TermArg] = (),
    *,
    cipher: Optional[str] = None,
    secret: Any = None,
    batch_size: int = 500,
    unlock: Optional[Mapping[str, Mapping[str, Any]]] = None,
    key_name: Optional[str] = None,
    keep_unlocked: bool = False,
    retries: int = 3,
    ordered: bool = False,
    progress: bool = False,
    binary: Union[str, "os.PathLike[str]", None] = None,
    plugin_name: str = PLUGIN_NAME,
    **count_options: Any,
) -> "ClusterQuery":
    """Count ``terms`` in ``files`` on the Dask cluster of ``client``, ``batch_size`` files per task.

    Returns a :class:`ClusterQuery` at once: iterate it for :class:`~cryptcount.FileResult`
    objects (``index`` into ``files``, ``path`` the very object passed) as batches finish; its
    ``summary`` has the fields of a local query's. ``cipher``/``secret``: the secret is unlocked
    once per worker under ``key_name`` (default: a name unique to this query) and forgotten when
    the query ends, unless ``keep_unlocked``. ``unlock``: further keys, ``{name: {"cipher": ...,
    "secret": ..., **options}}`` (for ``cipher="auto", keys=[...]``). ``count_options``: as for
    :meth:`cryptcount.Coprocess.count` (``ignore_case``, ``whole_word``, ``regex``, ``offsets``, ``words``,
    ``key=`` a name already unlocked on the workers, ...). ``retries``: Dask retries of a batch
    whose coprocess died. If no plugin is registered yet, one is, with ``binary`` resolved here
    ($CRYPTCOUNT_BIN or PATH when None).
    """
    if isinstance(files, (str, bytes)) or hasattr(files, "__fspath__"):
        raise TypeError("files must be a list of paths, not a single path")
    if isinstance(terms, (str, bytes)):
        raise TypeError("terms must be a list of terms, not a single term")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError("batch_size must be a positive integer")
    originals = list(files)
    wire_paths = [_absolute(p) for p in originals]
    wire_terms = [wire_term(t) for t in terms]

    qid = uuid.uuid4().hex
    options: Dict[str, Any] = dict(count_options)
    options["ordered"] = bool(ordered)
    unlocks: List[_Unlock] = []
    if secret is not None:
        if cipher is None:
            raise ValueError("cipher= is required with secret=")
        if "key" in options:
            raise ValueError("give either key= (a name unlocked on the workers) or cipher= and secret=")
        name = key_name if key_name is not None else f"dask-{qid}"
        key_opts = tuple((k, options.pop(k)) for k in _KEY_OPTIONS if k in options)
        unlocks.append(_Unlock(name, _token(cipher, secret, key_opts), cipher, _Sealed(secret), key_opts))
        options["key"] = name
    elif cipher is not None:
        options["cipher"] = cipher
    for name, spec in (unlock or {}).items():
        spec = dict(spec)
        if "cipher" not in spec:
            raise ValueError(f"unlock[{name!r}] needs a cipher")
        u_cipher = str(spec.pop("cipher"))
        u_secret = spec.pop("secret", None)
        u_opts = tuple(spec.items())
        unlocks.append(_Unlock(str(name), _token(u_cipher, u_secret, u_opts), u_cipher, _Sealed(u_secret), u_opts))

    if not client.run_on_scheduler(_has_plugin, plugin_name):  # type: ignore[no-untyped-call]
        try:
            resolved: Optional[str] = os.path.abspath(find_binary(binary))
        except BinaryNotFound:
            resolved = None  # let each worker look for its own
        client.register_plugin(CryptCountPlugin(resolved, idempotent=True), name=plugin_name)

    batches = [
        _Batch(
            plugin_name, qid, n, start, wire_paths[start : start + batch_size], wire_terms, options, tuple(unlocks),
            keep_unlocked,
        )  # fmt: skip
        for n, start in enumerate(range(0, len(originals), batch_size))
    ]
    forget = () if keep_unlocked else tuple((u.name, u.token) for u in unlocks)
    return ClusterQuery(
        client, originals, batches, qid=qid, forget=forget, retries=retries, ordered=ordered,
        n_terms=len(wire_terms), words=bool(options.get("words")), progress=progress,
        key_name=unlocks[0].name if secret is not None else None, plugin_name=plugin_name,
    )  # fmt: skip


class ClusterQuery:
    """A count running on a Dask cluster: iterate it for :class:`~cryptcount.FileResult`.

    Mirrors :class:`~cryptcount.CountQuery`: ``summary``/``wait()``, ``results()``, ``done``,
    ``cancel()`` (outstanding Dask futures and the workers' coprocess requests are cancelled; the
    results already received are still yielded, and the summary says ``cancelled``), ``close()``
    (the same, dropping unread results). Breaking out of a ``for`` loop over it, leaving its
    ``with`` block or dropping it closes it.
    """

    def __init__(
        self,
        client: Client,
        originals: List[Any],
        batches: List[_Batch],
        *,
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
        self._finished = True
        self._closed = True
        self.id = qid
        #: The name the secret is unlocked under on the workers (with ``cipher=``/``secret=``).
        self.key_name = key_name
        self._client = client
        self._plugin = plugin_name
        self._originals = originals
        self._forget = tuple(forget)
        self._ordered = ordered
        self._lock = threading.RLock()
        self._buffer: Deque[FileResult] = deque()
        self._held: Dict[int, List[_Row]] = {}  # ordered: batches that arrived early
        self._next_batch = 0
        self._seen = bytearray(len(originals))
        self._produced = 0
        self._failed = 0
        self._counts = [0] * n_terms
        self._words: Optional[int] = 0 if words else None
        self._summary: Optional[Summary] = None
        self._error: Optional[BaseException] = None
        self._cancelled = False
        self._bar = _progress_bar(progress, len(originals))
        self._t0 = time.perf_counter()
        self._pending: Dict[Any, int] = {}
        self._futures: Dict[Any, Future[Any]] = {}
        if not batches:
            self._closed = False
            self._finish()
            return
        futures: List[Future[Any]] = client.map(
            _run_batch, batches, key=[f"cryptcount-{qid}-{b.number}" for b in batches], pure=False,
            retries=retries,
        )  # fmt: skip
        self._pending = {f.key: b.number for f, b in zip(futures, batches)}
        self._futures = {f.key: f for f in futures}
        self._completed = as_completed(  # type: ignore[no-untyped-call]
            futures, loop=client.loop, with_results=True, raise_errors=False
        )
        self._finished = False
        self._closed = False

    # -- receiving -----------------------------------------------------------------------

    def _pump(self) -> None:
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
            if not self._finished and not self._pending:
                self._complete()

    def _accept(self, number: int, rows: List[_Row]) -> None:
        if not self._ordered:
            self._emit(rows)
            return
        self._held[number] = rows
        while self._next_batch in self._held:
            self._emit(self._held.pop(self._next_batch))
            self._next_batch += 1

    def _emit(self, rows: List[_Row]) -> None:
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
        self._finish()

    # -- ending --------------------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        self._cancel_futures()
        self._finish(error=error)

    def _cancel_futures(self) -> None:
        futures = list(self._futures.values())
        self._futures = {}
        self._pending = {}
        if futures:
            try:
                self._client.cancel(futures)  # type: ignore[no-untyped-call]
            except Exception:
                pass  # the client is closing: its futures go with it

    def _finish(self, error: Optional[BaseException] = None) -> None:
        self._finished = True
        self._error = error
        self._summary = Summary(
            files=self._produced,
            failed=self._failed,
            skipped=len(self._originals) - self._produced,
            counts=list(self._counts),
            words=self._words,
            elapsed_us=int((time.perf_counter() - self._t0) * 1e6),
            cancelled=self._cancelled,
        )
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._end_on_workers()

    def _end_on_workers(self) -> None:
        # Cancel this query's requests in the coprocesses, refuse its late tasks, forget its keys.
        try:
            self._client.run(_end_query, self._plugin, self.id, self._forget, on_error="ignore")
        except Exception:
            pass  # the client or cluster is gone: so are the coprocesses and their keys

    # -- the public API ------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once the query has finished (all batches in, failed, cancelled or closed)."""
        return self._finished

    def cancel(self) -> None:
        """Cancel the outstanding batches and the coprocesses' requests; the query then ends
        with ``summary.cancelled`` and the files never reported in ``summary.skipped``."""
        with self._lock:
            if self._finished:
                return
            self._cancelled = True
            self._cancel_futures()
            self._finish()

    def close(self) -> None:
        """Cancel if unfinished and drop unread results."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._buffer.clear()
            self._held.clear()
        self.cancel()

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
                self._pump()
        finally:
            if not self._finished:
                self.close()

    def wait(self) -> Summary:
        """Wait until every batch is in; unread results stay available to iteration."""
        while not self._finished:
            self._pump()
        if self._error is not None:
            raise self._error
        assert self._summary is not None
        return self._summary

    @property
    def summary(self) -> Summary:
        """The totals (waits for the query to finish)."""
        return self.wait()

    def results(self) -> List[FileResult]:
        """All (remaining) results once the query has finished."""
        return list(self)

    def __enter__(self) -> "ClusterQuery":
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Never block here (this may run on Dask's event loop): clean up from a short-lived thread.
        if not getattr(self, "_finished", True):
            try:
                threading.Thread(target=self.close, daemon=True).start()
            except Exception:
                pass
