#!/usr/bin/env python3
"""Regenerates the cipher fixtures in this folder with the real tools.

Needs: python3 with `cryptography` and `pyrage` (pip install cryptography pyrage), and the
`age`, `age-keygen` and `openssl` commands (apt-get install -y age openssl).

Every secret written here is a test-only key or password, committed on purpose.
`manifest.json` lists each fixture with its cipher, secret, options and the expected result
(`ok` with the plaintext's SHA-256 and length, or an error code), and the Swift tests
(Tests/CryptCountTests/CipherFixtureTests.swift) run every entry.

Run from anywhere: python3 Tests/Fixtures/ciphers/make_fixtures.py
"""

import base64
import hashlib
import json
import os
import subprocess
import sys

from cryptography.fernet import Fernet
import pyrage

HERE = os.path.dirname(os.path.abspath(__file__))

# Fixed test-only secrets.
FERNET_KEY = b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="  # the Fernet spec's example key
FERNET_KEY2 = b"kqC7Tr9ifEpZDkh8VqeVtCD0FJtGd_lt6q5k5I7Fe7A="
OPENSSL_PASSWORD = "correct horse battery staple"
AGE_PASSPHRASE = "test-only passphrase"
FERNET_TIME = 1_700_000_000  # tokens are made "at" this time, for ttl tests

SMALL = (
    "Dear diary,\nToday the cryptcount fixtures were made by the real tools. "
    "café, naïve, 日本語, emoji 🙂.\nThe end.\n"
).encode()


def large_text():
    # ~140 KB of varied lines: three age chunks and many AES blocks.
    lines = []
    for i in range(2300):
        lines.append(f"line {i:05d}: the quick brown fox {i * 7919 % 10007} jumps over the lazy dog\n")
    return "".join(lines).encode()


LARGE = large_text()
manifest = []


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def read(name):
    with open(os.path.join(HERE, name), "rb") as f:
        return f.read()


def entry(name, cipher, secret, expect, plain=None, **options):
    e = {"file": name, "cipher": cipher, "secret": secret, "expect": expect}
    if plain is not None:
        e["sha256"] = hashlib.sha256(plain).hexdigest()
        e["length"] = len(plain)
    e.update(options)
    manifest.append(e)


def flip(data, index, mask=0x01):
    b = bytearray(data)
    b[index] ^= mask
    return bytes(b)


def run(args, stdin=None):
    return subprocess.run(args, input=stdin, check=True, capture_output=True).stdout


def fernet():
    f = Fernet(FERNET_KEY)
    small = f.encrypt_at_time(SMALL, FERNET_TIME)
    write("fernet_small.token", small)
    entry("fernet_small.token", "fernet", FERNET_KEY.decode(), "ok", SMALL)
    # ttl: valid one second before expiry, expired one second after, far-future rejected.
    entry("fernet_small.token", "fernet", FERNET_KEY.decode(), "ok", SMALL, ttl=100, now=FERNET_TIME + 100)
    entry("fernet_small.token", "fernet", FERNET_KEY.decode(), "decrypt_failed", ttl=100, now=FERNET_TIME + 101)
    entry("fernet_small.token", "fernet", FERNET_KEY.decode(), "decrypt_failed", ttl=100, now=FERNET_TIME - 61)
    entry("fernet_small.token", "fernet", FERNET_KEY.decode(), "ok", SMALL, ttl=100, now=FERNET_TIME - 60)
    # Whitespace around the token, as a file written with a trailing newline would have.
    write("fernet_whitespace.token", b"\n  " + small + b"\r\n")
    entry("fernet_whitespace.token", "fernet", FERNET_KEY.decode(), "ok", SMALL)
    other = Fernet(FERNET_KEY2).encrypt(SMALL)
    write("fernet_key2.token", other)
    # MultiFernet order: the second key of the list decrypts it.
    entry("fernet_key2.token", "fernet", [FERNET_KEY.decode(), FERNET_KEY2.decode()], "ok", SMALL)
    entry("fernet_key2.token", "fernet", FERNET_KEY.decode(), "decrypt_failed")
    # Tampered: one base64 character in the ciphertext changed (still valid base64).
    t = bytearray(small)
    t[60] = ord("A") if t[60] != ord("A") else ord("B")
    write("fernet_tampered.token", bytes(t))
    entry("fernet_tampered.token", "fernet", FERNET_KEY.decode(), "decrypt_failed")
    write("fernet_truncated.token", small[:-7])
    entry("fernet_truncated.token", "fernet", FERNET_KEY.decode(), "bad_format")
    raw = base64.urlsafe_b64decode(small)
    write("fernet_version.token", base64.urlsafe_b64encode(b"\x81" + raw[1:]))
    entry("fernet_version.token", "fernet", FERNET_KEY.decode(), "bad_format")
    write("plain.txt", SMALL)
    entry("plain.txt", "fernet", FERNET_KEY.decode(), "bad_format")


def openssl():
    salt = "0102030405060708"
    for name, src, extra in [
        ("openssl_small.bin", SMALL, []),
        ("openssl_large.bin", LARGE, []),
        ("openssl_iter1000.bin", SMALL, ["-iter", "1000"]),
        ("openssl_empty.bin", b"", []),
    ]:
        args = ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-S", salt, "-pass", "pass:" + OPENSSL_PASSWORD]
        args += extra
        # With -S, OpenSSL 3 leaves out the `Salted__` header that a random salt gets; put it
        # back so the file is what `openssl enc` writes by default (with a known salt).
        data = b"Salted__" + bytes.fromhex(salt) + run(args, stdin=src)
        write(name, data)
    entry("openssl_small.bin", "openssl", OPENSSL_PASSWORD, "ok", SMALL)
    entry("openssl_large.bin", "openssl", OPENSSL_PASSWORD, "ok", LARGE)
    entry("openssl_empty.bin", "openssl", OPENSSL_PASSWORD, "ok", b"")
    entry("openssl_iter1000.bin", "openssl", OPENSSL_PASSWORD, "ok", SMALL, iter=1000)
    entry("openssl_iter1000.bin", "openssl", OPENSSL_PASSWORD, "decrypt_failed")  # default iter 10000
    # Random salt (as openssl does by default) too.
    data = run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "pass:" + OPENSSL_PASSWORD], stdin=SMALL)
    write("openssl_random_salt.bin", data)
    entry("openssl_random_salt.bin", "openssl", OPENSSL_PASSWORD, "ok", SMALL)
    small = read("openssl_small.bin")
    # Flipping the top bit of the second-to-last block's last byte makes the pad byte > 16.
    write("openssl_tampered.bin", flip(small, len(small) - 17, 0x80))
    entry("openssl_tampered.bin", "openssl", OPENSSL_PASSWORD, "decrypt_failed")
    write("openssl_truncated.bin", small[:-5])
    entry("openssl_truncated.bin", "openssl", OPENSSL_PASSWORD, "bad_format")
    write("openssl_header_only.bin", small[:16])
    entry("openssl_header_only.bin", "openssl", OPENSSL_PASSWORD, "bad_format")
    # A wrong password; the fixed salt makes the (padding) failure deterministic.
    entry("openssl_small.bin", "openssl", "not-the-password-42", "decrypt_failed")
    entry("plain.txt", "openssl", OPENSSL_PASSWORD, "bad_format")


def age():
    ident = run(["age-keygen"]).decode()
    write("age_identity.txt", ident.encode())
    recipient = [l.split(": ")[1] for l in ident.splitlines() if l.startswith("# public key: ")][0]
    other = run(["age-keygen"]).decode()
    write("age_other_identity.txt", other.encode())
    id_text = ident
    other_text = other

    write("age_small.age", run(["age", "-r", recipient], stdin=SMALL))
    write("age_large.age", run(["age", "-r", recipient], stdin=LARGE))
    write("age_empty.age", run(["age", "-r", recipient], stdin=b""))
    write("age_small_armored.age", run(["age", "-a", "-r", recipient], stdin=SMALL))
    write("age_large_armored.age", run(["age", "-a", "-r", recipient], stdin=LARGE))
    for name, plain in [
        ("age_small.age", SMALL),
        ("age_large.age", LARGE),
        ("age_empty.age", b""),
        ("age_small_armored.age", SMALL),
        ("age_large_armored.age", LARGE),
    ]:
        entry(name, "age", id_text, "ok", plain)
    entry("age_small.age", "age", other_text, "decrypt_failed")
    # Both identities in one text: the second matches.
    entry("age_small.age", "age", other_text + "\n" + id_text, "ok", SMALL)

    # rage (through pyrage): X25519 and passphrase (scrypt, rage's calibrated work factor).
    rid = pyrage.x25519.Identity.generate()
    write("rage_identity.txt", (str(rid) + "\n").encode())
    write("rage_small.age", pyrage.encrypt(SMALL, [rid.to_public()]))
    entry("rage_small.age", "age", str(rid), "ok", SMALL)
    write("rage_passphrase.age", pyrage.passphrase.encrypt(SMALL, AGE_PASSPHRASE))
    entry("rage_passphrase.age", "age", {"passphrase": AGE_PASSPHRASE}, "ok", SMALL, slow=True)
    entry("rage_passphrase.age", "age", {"passphrase": "not-the-passphrase-17"}, "decrypt_failed", slow=True)
    # A passphrase file with identities only: no stanza matches.
    entry("rage_passphrase.age", "age", id_text, "decrypt_failed")

    small = read("age_small.age")
    large = read("age_large.age")
    write("age_tampered_payload.age", flip(small, len(small) - 20))
    entry("age_tampered_payload.age", "age", id_text, "decrypt_failed")
    header_end = small.index(b"\n---") + 1
    write("age_tampered_header.age", flip(small, header_end - 5))  # inside the stanza body line
    entry("age_tampered_header.age", "age", id_text, "decrypt_failed")
    mac_at = small.index(b"\n--- ") + 5
    write("age_tampered_mac.age", small[:mac_at] + (b"B" if small[mac_at:mac_at + 1] == b"A" else b"A") + small[mac_at + 1:])
    entry("age_tampered_mac.age", "age", id_text, "decrypt_failed")
    write("age_truncated.age", large[:-100])
    entry("age_truncated.age", "age", id_text, "decrypt_failed")
    # Cut exactly after the second (full, non-final) chunk: no final chunk follows.
    payload = large.index(b"\n", large.index(b"\n--- ") + 1) + 1 + 16
    write("age_truncated_chunk.age", large[: payload + 2 * (65536 + 16)])
    entry("age_truncated_chunk.age", "age", id_text, "decrypt_failed")
    write("age_trailing.age", small + b"x")
    entry("age_trailing.age", "age", id_text, "decrypt_failed")
    armored = read("age_small_armored.age")
    write("age_armored_trailing.age", armored + b"garbage\n")
    entry("age_armored_trailing.age", "age", id_text, "decrypt_failed")
    entry("plain.txt", "age", id_text, "bad_format")
    entry("openssl_small.bin", "age", id_text, "bad_format")


def main():
    fernet()
    openssl()
    age()
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{len(manifest)} fixture cases written to {HERE}", file=sys.stderr)


if __name__ == "__main__":
    main()
