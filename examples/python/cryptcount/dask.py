"""Run cryptcount queries on a Dask cluster: one `cryptcount serve` per Dask worker.

    from distributed import Client
    from cryptcount.dask import count_on_cluster

    client = Client("tcp://scheduler:8786")
    query = count_on_cluster(client, paths, ["rain"], cipher="biographer", secret=password)
    for r in query:              # FileResults (r.index is the position in `paths`), batch by batch
        ...
    print(query.summary)         # the same fields as a local query's Summary

Which parts run where:

- client (your program): splits ``files`` into batches, submits one Dask task per batch (at
  most ``max_in_flight`` at a time, the next one as each finishes), turns
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

The modules behind it: ``_dask_plugin`` (the worker side), ``_dask_query`` (:class:`ClusterQuery`,
the client side of a running query) and ``_sealing`` (secrets on their way to the workers).
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional, Sequence, Union

try:
    from distributed import Client
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "cryptcount.dask needs Dask's distributed scheduler: pip install './examples/python[dask]' "
        "(or: pip install dask distributed)"
    ) from exc

from ._dask_plugin import (
    PLUGIN_NAME,
    CoprocessLost,
    CryptCountPlugin,
    _Batch,
    _end_query,
    _has_plugin,
    _run_batch,
    _status,
)
from ._dask_query import ClusterQuery
from ._sealing import Sealed as _Sealed
from ._sealing import Unlock as _Unlock
from ._sealing import seal_query_keys
from ._sealing import token as _token
from ._transport import find_binary
from ._types import PathArg, TermArg, wire_path, wire_term
from .errors import BinaryNotFound

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

# Internals that tests and older pickles name through this module.
_INTERNALS = (_Batch, _Sealed, _Unlock, _run_batch, _token)




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


def _absolute_from(path: PathArg, cwd: str, cwdb: bytes) -> Union[str, bytes]:
    """The path as sent: workers have their own working directories, so a relative path is
    joined to the client's current directory as it was when the query was made."""
    p = os.fspath(path)
    if isinstance(p, bytes):
        return p if not p or os.path.isabs(p) else os.path.join(cwdb, p)
    if isinstance(p, str):
        return wire_path(p if not p or os.path.isabs(p) else os.path.join(cwd, p))
    raise TypeError(f"a path must be str, bytes or os.PathLike, not {type(path).__name__}")


def count_on_cluster(
    client: Client,
    files: Iterable[PathArg],
    terms: Iterable[TermArg] = (),
    *,
    cipher: Optional[str] = None,
    secret: Any = None,
    batch_size: int = 500,
    max_in_flight: Optional[int] = None,
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
    ($CRYPTCOUNT_BIN or PATH when None). ``max_in_flight``: at most this many batches are
    submitted and not yet taken at a time, the next one submitted as each finishes (None: twice
    the cluster's worker threads, at least 2), so that the client's and the scheduler's memory
    stay flat however many files the query has; the query's first
    ``max_in_flight * batch_size`` files are in flight first (results still arrive as batches finish).
    """
    if isinstance(files, (str, bytes)) or hasattr(files, "__fspath__"):
        raise TypeError("files must be a list of paths, not a single path")
    if isinstance(terms, (str, bytes)):
        raise TypeError("terms must be a list of terms, not a single term")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError("batch_size must be a positive integer")
    if max_in_flight is not None and (not isinstance(max_in_flight, int) or max_in_flight < 1):
        raise ValueError("max_in_flight must be a positive integer or None")
    originals = list(files)
    # Made absolute now (relative paths are the caller's current directory at call time), in
    # batches' worth: the wire form of a batch is made when the batch is submitted.
    cwd, cwdb = os.getcwd(), os.getcwdb()
    for p in originals:
        if not isinstance(os.fspath(p) if isinstance(p, (str, bytes, os.PathLike)) else None, (str, bytes)):
            raise TypeError(f"a path must be str, bytes or os.PathLike, not {type(p).__name__}")
    wire_terms = [wire_term(t) for t in terms]

    qid = uuid.uuid4().hex
    options: Dict[str, Any] = dict(count_options)
    options["ordered"] = bool(ordered)
    unlocks = seal_query_keys(f"dask-{qid}", cipher, secret, key_name, unlock, options)

    if not client.run_on_scheduler(_has_plugin, plugin_name):  # type: ignore[no-untyped-call]
        try:
            resolved: Optional[str] = os.path.abspath(find_binary(binary))
        except BinaryNotFound:
            resolved = None  # let each worker look for its own
        client.register_plugin(CryptCountPlugin(resolved, idempotent=True), name=plugin_name)

    if max_in_flight is None:
        threads = sum(client.nthreads().values())  # asks the scheduler: workers that just joined count
        max_in_flight = max(2, 2 * threads)

    def batches() -> Iterator[_Batch]:
        for n, start in enumerate(range(0, len(originals), batch_size)):
            paths = [_absolute_from(p, cwd, cwdb) for p in originals[start : start + batch_size]]
            yield _Batch(plugin_name, qid, n, start, paths, wire_terms, options, tuple(unlocks), keep_unlocked)

    forget = () if keep_unlocked else tuple((u.name, u.token) for u in unlocks)
    return ClusterQuery(
        client, originals, batches(), max_in_flight=max_in_flight, qid=qid, forget=forget, retries=retries, ordered=ordered,
        n_terms=len(wire_terms), words=bool(options.get("words")), progress=progress,
        key_name=unlocks[0].name if secret is not None else None, plugin_name=plugin_name,
    )  # fmt: skip
