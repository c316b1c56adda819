"""The seed diary app's file format ("biographer"), in pure Python.

A toy cipher kept for compatibility with existing diaries: it has no integrity and weak secrecy.
Do not use it to protect anything. See shared/seed/biographer-format.md for the definition.

``encrypt``/``decrypt`` are whole-buffer implementations (big-integer XOR, ``bytes.translate``)
that are fast enough to write test corpora; ``decrypt_seed_style`` is the byte-at-a-time loop
that the seed app ran, kept to show what the coprocess replaces.
"""

from __future__ import annotations

import random
from typing import List, Optional, Union

__all__ = [
    "DecryptError",
    "encrypt",
    "decrypt",
    "encrypt_v0",
    "decrypt_v0",
    "decrypt_seed_style",
    "search_seed_style",
]

Password = Union[str, bytes]
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class DecryptError(ValueError):
    """Wrong password, or not this format (``kind`` is ``decrypt_failed`` or ``bad_format``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _pw_bytes(password: Password) -> bytes:
    pw = password.encode("utf-8") if isinstance(password, str) else bytes(password)
    if not pw:
        raise ValueError("the biographer cipher needs a non-empty password")
    return pw


def _amount(pw: bytes) -> int:
    return sum(pw.hex().encode("ascii")) % 256


def _add_table(amount: int) -> bytes:
    return bytes((b + amount) & 0xFF for b in range(256))


def _xor_repeating(data: bytes, pw: bytes) -> bytes:
    if not data:
        return b""
    reps = -(-len(data) // len(pw))
    key = (pw * reps)[: len(data)]
    n = int.from_bytes(data, "little") ^ int.from_bytes(key, "little")
    return n.to_bytes(len(data), "little")


def _hex(data: bytes) -> bytes:
    return data.hex().encode("ascii")


def _unhex(data: bytes) -> bytes:
    # bytes.fromhex would skip whitespace; the format allows hex digits only.
    if len(data) % 2 or data.translate(None, _HEX_DIGITS):
        raise DecryptError("decrypt_failed", "wrong password (or corrupted file)")
    return bytes.fromhex(data.decode("ascii"))


def _random_iv(rng: Optional[random.Random]) -> bytes:
    r = rng if rng is not None else random.SystemRandom()
    return bytes(r.randint(1, 254) for _ in range(8))


def encrypt(plain: bytes, password: Password, iv: Optional[bytes] = None, rng: Optional[random.Random] = None) -> bytes:
    """Encrypt like the seed app (``iv``: 8 bytes; default random, each in 1..254)."""
    pw = _pw_bytes(password)
    if iv is None:
        iv = _random_iv(rng)
    if len(iv) != 8:
        raise ValueError("the iv must be 8 bytes")
    t = _hex(_hex(_hex(_hex(bytes(plain)))))
    c = iv + t
    # c[i] ^= c[i-8] in increasing i is a running XOR over 8-byte lanes: a prefix-XOR scan
    # on one big integer (each step doubles the distance), instead of a byte loop.
    nbits = len(c) * 8
    x = int.from_bytes(c, "little")
    shift = 64
    while shift < nbits:
        x ^= x << shift
        shift *= 2
    x &= (1 << nbits) - 1
    c = x.to_bytes(len(c), "little")
    c = c.translate(_add_table(_amount(pw)))
    return _xor_repeating(c, pw)


def decrypt(data: bytes, password: Password) -> bytes:
    """Decrypt a ``biographer`` file; raises :class:`DecryptError`."""
    pw = _pw_bytes(password)
    if len(data) < 8 or (len(data) - 8) % 16:
        raise DecryptError("bad_format", "not a biographer file (wrong length)")
    d = _xor_repeating(bytes(data), pw).translate(_add_table(-_amount(pw)))
    # Undoing the chain in decreasing i uses the original d[i-8]: one XOR with a shifted copy.
    nbits = len(d) * 8
    x = int.from_bytes(d, "little")
    x = (x ^ (x << 64)) & ((1 << nbits) - 1)
    d = x.to_bytes(len(d), "little")
    return _unhex(_unhex(_unhex(_unhex(d[8:]))))


def encrypt_v0(plain: bytes, password: Password) -> bytes:
    """The app's first format: one hex pass, then + amount, then XOR with the password."""
    pw = _pw_bytes(password)
    return _xor_repeating(_hex(bytes(plain)).translate(_add_table(_amount(pw))), pw)


def decrypt_v0(data: bytes, password: Password) -> bytes:
    pw = _pw_bytes(password)
    if len(data) % 2:
        raise DecryptError("bad_format", "not a biographer-v0 file (odd length)")
    return _unhex(_xor_repeating(bytes(data), pw).translate(_add_table(-_amount(pw))))


def decrypt_seed_style(data: bytes, password: Password) -> bytes:
    """The same decryption written the way the seed app did it: a Python loop per byte."""
    pw = _pw_bytes(password)
    amount = _amount(pw)
    if len(data) < 8 or (len(data) - 8) % 16:
        raise DecryptError("bad_format", "not a biographer file (wrong length)")
    d = bytearray(data)
    for i in range(len(d)):
        d[i] ^= pw[i % len(pw)]
        d[i] = (d[i] - amount) % 256
    for i in range(len(d) - 1, 7, -1):
        d[i] ^= d[i - 8]
    text = bytes(d[8:])
    for _ in range(4):
        out = bytearray()
        for i in range(0, len(text), 2):
            pair = text[i : i + 2]
            try:
                out.append(int(pair, 16))
            except ValueError:
                raise DecryptError("decrypt_failed", "wrong password (or corrupted file)") from None
        text = bytes(out)
    return text


def search_seed_style(data: bytes, password: Password, word: bytes) -> List[int]:
    """What the seed returned per file: byte offsets of ``word`` (non-overlapping, left to right)."""
    plain = decrypt_seed_style(data, password)
    offsets = []
    start = plain.find(word)
    while start != -1 and word:
        offsets.append(start)
        start = plain.find(word, start + len(word))
    return offsets
