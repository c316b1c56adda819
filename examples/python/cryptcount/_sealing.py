"""Secrets on their way to Dask workers: sealed so they never print, and named by a token.

A :class:`Sealed` secret pickles (Dask sends task arguments in memory) but its repr is
``<secret>``, so no log, traceback or dashboard shows it. An :class:`Unlock` says which key a
batch needs under which name; its token lets a worker that already holds that very key skip
unlocking it again, without the token saying anything about the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import msgpack

from ._types import wire_secret

# Cipher options that belong to the key when the secret is unlocked (protocol section 6).
KEY_OPTIONS = ("iter", "ttl")


class Sealed:
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


def token(cipher: str, secret: Any, options: Tuple[Tuple[str, Any], ...]) -> str:
    try:
        material = msgpack.packb([cipher, wire_secret(secret), [list(o) for o in options]], use_bin_type=True)
    except (TypeError, ValueError):
        return uuid.uuid4().hex  # not serialisable here: the coprocess will say what is wrong
    return hmac.new(_TOKEN_SALT, material, hashlib.sha256).hexdigest()


class Unlock(NamedTuple):
    name: str
    token: str  # token(...): a worker unlocks a name again only when it held another key under it
    cipher: str
    secret: Sealed
    options: Tuple[Tuple[str, Any], ...]


def seal(name: str, cipher: str, secret: Any, options: Tuple[Tuple[str, Any], ...]) -> Unlock:
    return Unlock(name, token(cipher, secret, options), cipher, Sealed(secret), options)


def seal_query_keys(
    default_name: str,
    cipher: Optional[str],
    secret: Any,
    key_name: Optional[str],
    unlock: Optional[Mapping[str, Mapping[str, Any]]],
    options: Dict[str, Any],
) -> List[Unlock]:
    """The keys a cluster query unlocks on the workers, sealed; updates the count ``options``.

    ``cipher``/``secret``: unlocked under ``key_name`` (default ``default_name``), with the key
    options among ``options`` moved to the unlock, and the count then names it by ``key``.
    ``unlock``: further keys, ``{name: {"cipher": ..., "secret": ..., **options}}``.
    """
    unlocks: List[Unlock] = []
    if secret is not None:
        if cipher is None:
            raise ValueError("cipher= is required with secret=")
        if "key" in options:
            raise ValueError("give either key= (a name unlocked on the workers) or cipher= and secret=")
        name = key_name if key_name is not None else default_name
        key_opts = tuple((k, options.pop(k)) for k in KEY_OPTIONS if k in options)
        unlocks.append(seal(name, cipher, secret, key_opts))
        options["key"] = name
    elif cipher is not None:
        options["cipher"] = cipher
    for name, spec in (unlock or {}).items():
        spec = dict(spec)
        if "cipher" not in spec:
            raise ValueError(f"unlock[{name!r}] needs a cipher")
        u_cipher = str(spec.pop("cipher"))
        u_secret = spec.pop("secret", None)
        unlocks.append(seal(str(name), u_cipher, u_secret, tuple(spec.items())))
    return unlocks
