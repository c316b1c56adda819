"""Result types and the count options shared by the sync, asyncio and Dask APIs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from .errors import ProtocolError

#: What ``count`` accepts as a path: ``str``, ``bytes`` or any ``os.PathLike``.
PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
#: What ``count`` accepts as a term: ``str`` (sent as UTF-8) or ``bytes``.
TermArg = Union[str, bytes]


@dataclass(frozen=True)
class FileError:
    """Why one file could not be counted (``not_found``, ``decrypt_failed``, ...)."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class FileResult:
    """One file's answer. ``path`` is the very object the caller passed at ``index``."""

    index: int
    path: Any
    counts: List[int]
    bytes: int
    cached: bool
    words: Optional[int] = None
    offsets: Optional[List[List[int]]] = None
    snippets: Optional[List[List[str]]] = None
    truncated: bool = False
    error: Optional[FileError] = None
    #: The cipher the coprocess used, when it chose one (requests with ``cipher="auto"``).
    cipher: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def total(self) -> int:
        """All occurrences of all terms in this file."""
        return sum(self.counts)


@dataclass(frozen=True)
class Summary:
    """The ``done`` response of a count: totals over the files that succeeded."""

    files: int
    failed: int
    skipped: int
    counts: List[int]
    words: Optional[int]
    elapsed_us: int
    cancelled: bool


def wire_path(path: PathArg) -> Union[str, bytes]:
    """The path as sent: str when it is valid UTF-8 text, else bytes (MessagePack bin)."""
    p = os.fspath(path)
    if isinstance(p, str):
        try:
            p.encode("utf-8")
        except UnicodeEncodeError:
            # A str holding surrogate escapes (a non-UTF-8 name decoded by os.fsdecode).
            return os.fsencode(p)
        return p
    if isinstance(p, bytes):
        return p
    raise TypeError(f"a path must be str, bytes or os.PathLike, not {type(path).__name__}")


def absolute_path(path: PathArg) -> Union[str, bytes]:
    """The path the caller means: a relative one is joined to the caller's current directory at
    the time of the call (the coprocess, or a Dask worker, has a working directory of its own).
    Not normalised (``..`` after a symlink keeps its meaning); an empty path stays empty."""
    p = os.fspath(path)
    if isinstance(p, bytes):
        return p if not p or os.path.isabs(p) else os.path.join(os.getcwdb(), p)
    if isinstance(p, str):
        return p if not p or os.path.isabs(p) else os.path.join(os.getcwd(), p)
    raise TypeError(f"a path must be str, bytes or os.PathLike, not {type(path).__name__}")


def wire_term(term: TermArg) -> Union[str, bytes]:
    if isinstance(term, str):
        try:
            term.encode("utf-8")
        except UnicodeEncodeError:
            return os.fsencode(term)
        return term
    if isinstance(term, (bytes, bytearray, memoryview)):
        return bytes(term)
    raise TypeError(f"a term must be str or bytes, not {type(term).__name__}")


def wire_secret(secret: Any) -> Any:
    """The secret as sent: a str holding surrogate escapes (a password read with os.fsdecode)
    as its bytes, as paths and terms are; in lists and maps too. Never echoes the secret: a str
    that cannot be sent raises an error that does not hold it."""
    if isinstance(secret, str):
        try:
            secret.encode("utf-8")
            return secret
        except UnicodeEncodeError:
            pass
        encoded = None
        try:
            encoded = os.fsencode(secret)
        except UnicodeEncodeError:
            pass  # raised below, outside this handler: no __context__ holds the secret
        if encoded is None:
            raise ValueError("the secret is a str with a lone surrogate that is not an escaped byte: pass bytes")
        return encoded
    if isinstance(secret, (list, tuple)):
        return [wire_secret(s) for s in secret]
    if isinstance(secret, Mapping):
        return {k: wire_secret(v) for k, v in secret.items()}
    return secret


class CountOptions(NamedTuple):
    """The options of one ``count`` request, as the caller gave them (one type for every API).

    An option is sent only when it is set (a flag as ``True``). A new option is one field here
    (before ``extra``), one line in :meth:`request` and one parameter of ``count``
    (``_client._Counting``). A tuple, not a dataclass: one is built for every request.
    """

    key: Optional[str] = None
    cipher: Optional[str] = None
    secret: Any = None
    ignore_case: bool = False
    whole_word: bool = False
    offsets: bool = False
    max_offsets: Optional[int] = None
    context: int = 0
    words: bool = False
    ordered: bool = False
    regex: bool = False
    #: Further request keys, sent as given unless a field above already set them.
    extra: Mapping[str, Any] = MappingProxyType({})

    def __repr__(self) -> str:  # never the secret
        shown = ", ".join(
            f"{name}={'<secret>' if name == 'secret' and value is not None else repr(value)}"
            for name, value in zip(self._fields, self)
        )
        return f"CountOptions({shown})"

    def request(self, files: Iterable[PathArg], terms: Iterable[TermArg]) -> Tuple[Dict[str, Any], List[Any]]:
        """The ``count`` request and the caller's original path objects, by index (results report
        those; the request carries them made absolute against the caller's current directory)."""
        if isinstance(files, (str, bytes)) or hasattr(files, "__fspath__"):
            raise TypeError("files must be a list of paths, not a single path")
        if isinstance(terms, (str, bytes)):
            raise TypeError("terms must be a list of terms, not a single term")
        originals = list(files)
        msg: Dict[str, Any] = {
            "op": "count",
            # The common case first, at a fraction of the cost: an absolute ASCII str is sent as is.
            "files": [
                p if type(p) is str and p[:1] == "/" and p.isascii() else wire_path(absolute_path(p)) for p in originals
            ],
            "terms": [t if type(t) is str and t.isascii() else wire_term(t) for t in terms],
        }
        # One line per option, explicit: this is the tiny-request path.
        if self.key is not None:
            msg["key"] = self.key
        if self.cipher is not None:
            msg["cipher"] = self.cipher
        if self.secret is not None:
            msg["secret"] = wire_secret(self.secret)
        if self.ignore_case:
            msg["ignore_case"] = True
        if self.whole_word:
            msg["whole_word"] = True
        if self.offsets:
            msg["offsets"] = True
        if self.max_offsets is not None:
            msg["max_offsets"] = self.max_offsets
        if self.context:
            msg["context"] = self.context
        if self.words:
            msg["words"] = True
        if self.ordered:
            msg["ordered"] = True
        if self.regex:
            msg["regex"] = True
        for name, value in self.extra.items():
            msg.setdefault(name, value)
        # Plain successes as arrays, not maps: decoded about 7 times faster, and the driver
        # names the path by index anyway (``compact=False`` asks for maps). A coprocess that
        # predates the key ignores it.
        msg.setdefault("compact", True)
        return msg, originals


def unlock_request(name: str, cipher: str, secret: Any, options: Mapping[str, Any]) -> Dict[str, Any]:
    msg: Dict[str, Any] = {"op": "unlock", "name": name, "cipher": cipher}
    if secret is not None:
        msg["secret"] = wire_secret(secret)
    msg.update(options)
    return msg


def _check_index(index: Any, originals: Sequence[Any]) -> None:
    if type(index) is not int or not 0 <= index < len(originals):
        raise ProtocolError(f"a file response with index {index!r} for a request of {len(originals)} files")


def _check_counts(counts: Any) -> None:
    if type(counts) is not list or not all(type(c) is int for c in counts):
        raise ProtocolError(f"a file response whose counts are not a list of integers: {counts!r}")


def file_result(msg: Mapping[str, Any], originals: Sequence[Any]) -> FileResult:
    get = msg.get
    index = get("index")
    _check_index(index, originals)
    path = originals[index]
    err = get("error")
    error = None
    if err is not None:
        if not isinstance(err, Mapping) or not isinstance(err.get("code"), str):
            raise ProtocolError(f"a file response whose error is not a map with a code: {err!r}")
        error = FileError(err["code"], str(err.get("message", "")))
    counts = get("counts")
    if counts is not None:
        _check_counts(counts)
    nbytes = get("bytes")
    obj: FileResult = object.__new__(FileResult)
    # The fields a frozen dataclass's __init__ would set, at a fraction of the cost (one is built
    # per file); the values checked and converted as __init__'s callers here always did.
    obj.__dict__.update(
        index=index,
        path=path,
        counts=counts or [],  # checked above: a list of ints, decoded for this result alone
        bytes=nbytes if type(nbytes) is int else int(nbytes or 0),
        cached=bool(get("cached")),
        words=get("words"),
        offsets=get("offsets"),
        snippets=get("snippets"),
        truncated=bool(get("truncated")),
        error=error,
        cipher=get("cipher"),
    )
    return obj


def compact_file_result(item: List[Any], originals: Sequence[Any]) -> FileResult:
    """A result of a ``"compact": true`` request sent as ``[index, counts, bytes, cached]``
    (``words`` fifth when asked for): a file that was counted, with no offsets."""
    if not 4 <= len(item) <= 5:
        raise ProtocolError(f"a compact file result of {len(item)} elements: {item!r}")
    index, counts, nbytes, cached = item[0], item[1], item[2], item[3]
    _check_index(index, originals)
    _check_counts(counts)
    if type(nbytes) is not int or type(cached) is not bool:
        raise ProtocolError(f"a compact file result whose bytes or cached is mistyped: {item!r}")
    words = item[4] if len(item) == 5 else None
    if words is not None and type(words) is not int:
        raise ProtocolError(f"a compact file result whose words is not an integer: {item!r}")
    obj: FileResult = object.__new__(FileResult)
    obj.__dict__.update(
        index=index,
        path=originals[index],
        counts=counts,
        bytes=nbytes,
        cached=cached,
        words=words,
        offsets=None,
        snippets=None,
        truncated=False,
        error=None,
        cipher=None,
    )
    return obj


def summary(msg: Mapping[str, Any]) -> Summary:
    get = msg.get
    for key in ("files", "failed", "skipped", "elapsed_us"):
        if type(get(key, 0)) is not int:
            raise ProtocolError(f"a done response whose {key!r} is not an integer: {get(key)!r}")
    obj: Summary = object.__new__(Summary)
    obj.__dict__.update(
        files=get("files", 0),
        failed=get("failed", 0),
        skipped=get("skipped", 0),
        counts=list(get("counts") or ()),
        words=get("words"),
        elapsed_us=get("elapsed_us", 0),
        cancelled=bool(get("cancelled", False)),
    )
    return obj


def strip(resp: Mapping[str, Any]) -> Dict[str, Any]:
    """A response without its routing keys."""
    return {k: v for k, v in resp.items() if k not in ("id", "type")}
