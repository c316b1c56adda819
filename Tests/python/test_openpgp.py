"""The `openpgp` cipher against messages made by real gpg, through the Python driver.

Fixtures are made at test time in a temporary GNUPGHOME (batch mode, loopback pinentry,
passphrases on stdin, never on a command line). Counts are checked against the plaintext.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from cryptcount import Coprocess, RequestError

GPG = shutil.which("gpg")
pytestmark = pytest.mark.skipif(GPG is None, reason="gpg is not installed (apt install gnupg)")

ALICE_PW = "alice correct horse"
BOB_PW = "bob battery staple"
EVE_PW = "eve listens"
SYM_PW = "symmetric secret"
TERMS = ["rain", "the", "password"]

TEXTS = {
    "small": b"the rain in spain\nstays mainly in the plain\npassword: hunter2\n",
    "lines": b"".join(b"line %d: the rain falls, password %d\n" % (i, i % 7) for i in range(3000)),
}


def counts(data: bytes):
    return [data.count(t.encode()) for t in TERMS]


class GnuPG:
    """gpg in a home of its own; secrets go through stdin."""

    def __init__(self, home: Path):
        self.home = home
        home.mkdir(mode=0o700)
        self.env = dict(os.environ, GNUPGHOME=str(home))

    def run(self, *args, passphrase=None, check=True):
        cmd = [GPG, "--batch", "--yes", "--no-tty", "--quiet", "--trust-model", "always"]
        inp = None
        if passphrase is not None:
            cmd += ["--pinentry-mode", "loopback", "--passphrase-fd", "0"]
            inp = passphrase.encode() + b"\n"
        r = subprocess.run(cmd + list(args), input=inp, env=self.env, capture_output=True, timeout=300)
        if check and r.returncode != 0:
            raise RuntimeError(f"gpg {args[:3]} failed: {r.stderr.decode(errors='replace')}")
        return r

    def close(self):
        subprocess.run(["gpgconf", "--kill", "all"], env=self.env, capture_output=True)


@pytest.fixture(scope="module")
def pgp():
    # A short path: gpg-agent's socket lives in the home.
    root = Path(tempfile.mkdtemp(prefix="ccpgp", dir="/tmp"))
    g = GnuPG(root / "g")
    try:
        g.run("--quick-gen-key", "Alice <alice@example.org>", "future-default", "default", "never", passphrase=ALICE_PW)
        g.run("--quick-gen-key", "Eve <eve@example.org>", "future-default", "default", "never", passphrase=EVE_PW)
        # Bob: RSA-3072, with an RSA-3072 encryption subkey.
        g.run("--quick-gen-key", "Bob <bob@example.org>", "rsa3072", "sign,cert", "never", passphrase=BOB_PW)
        fpr = [
            line.split(":")[9]
            for line in g.run("--with-colons", "--list-keys", "bob@example.org").stdout.decode().splitlines()
            if line.startswith("fpr:")
        ][0]
        g.run("--quick-add-key", fpr, "rsa3072", "encr", "never", passphrase=BOB_PW)
        for who, pw in (("alice", ALICE_PW), ("bob", BOB_PW), ("eve", EVE_PW)):
            armored = g.run("--armor", "--export-secret-keys", f"{who}@example.org", passphrase=pw).stdout
            (root / f"{who}.asc").write_bytes(armored)
        (root / "alice.bin").write_bytes(g.run("--export-secret-keys", "alice@example.org", passphrase=ALICE_PW).stdout)
        for name, data in TEXTS.items():
            (root / f"{name}.txt").write_bytes(data)
        yield g, root
    finally:
        g.close()
        shutil.rmtree(root, ignore_errors=True)


def encrypt(g: GnuPG, root: Path, out: str, *opts, text="small", recipients=("alice",), sign=False):
    args = []
    for r in recipients:
        args += ["-r", f"{r}@example.org"]
    if sign:
        args += ["-s", "-u", "alice@example.org"]
    g.run(*opts, *args, "-e", "-o", str(root / out), str(root / f"{text}.txt"), passphrase=ALICE_PW if sign else None)
    return root / out


def symmetric(g: GnuPG, root: Path, out: str, *opts, text="small", pw=SYM_PW):
    g.run(*opts, "-c", "-o", str(root / out), str(root / f"{text}.txt"), passphrase=pw)
    return root / out


def keys_secret(root: Path, who: str, pw: str, ext="asc"):
    return {"keys": (root / f"{who}.{ext}").read_bytes(), "passphrase": pw}


def one(cc: Coprocess, path: Path, key: str):
    results = list(cc.count([str(path)], terms=TERMS, key=key))
    assert len(results) == 1
    return results[0]


def test_hello_lists_openpgp():
    with Coprocess() as cc:
        assert "openpgp" in cc.server_info["ciphers"]


def test_symmetric_messages(pgp):
    g, root = pgp
    files = [
        symmetric(g, root, "c-default.gpg"),
        symmetric(g, root, "c-aes128.gpg", "--cipher-algo", "AES128", "--s2k-count", "1024"),
        symmetric(g, root, "c-aes256.gpg", "--cipher-algo", "AES256", "--s2k-count", "65011712"),
        symmetric(g, root, "c-armor.asc", "--armor", "--s2k-count", "4096", text="lines"),
        symmetric(g, root, "c-bzip2.gpg", "--compress-algo", "bzip2", text="lines"),
    ]
    with Coprocess() as cc:
        cc.unlock("sym", cipher="openpgp", secret=SYM_PW)
        for f in files:
            r = one(cc, f, "sym")
            assert r.error is None, (f.name, r.error)
            text = "lines" if "armor" in f.name or "bzip2" in f.name else "small"
            assert r.counts == counts(TEXTS[text]), f.name
        # The passphrase in a map works the same way.
        cc.unlock("sym2", cipher="openpgp", secret={"passphrase": SYM_PW})
        assert one(cc, files[0], "sym2").counts == counts(TEXTS["small"])


@pytest.mark.parametrize("compress", ["none", "zip", "zlib", "bzip2"])
@pytest.mark.parametrize("armor", [False, True])
def test_public_key_messages_cv25519(pgp, compress, armor):
    g, root = pgp
    opts = ["--compress-algo", compress] + (["--armor"] if armor else [])
    f = encrypt(g, root, f"a-{compress}-{armor}.gpg", *opts, text="lines")
    with Coprocess() as cc:
        cc.unlock("alice", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW))
        r = one(cc, f, "alice")
        assert r.error is None and r.counts == counts(TEXTS["lines"]) and r.bytes == len(TEXTS["lines"])


def test_rsa_binary_keys_two_recipients_and_signed(pgp):
    g, root = pgp
    rsa = encrypt(g, root, "b-rsa.asc", "--armor", recipients=("bob",))
    both = encrypt(g, root, "ab.gpg", recipients=("alice", "bob"), text="lines")
    signed = encrypt(g, root, "signed.gpg", recipients=("alice",), sign=True)
    with Coprocess() as cc:
        cc.unlock("bob", cipher="openpgp", secret=keys_secret(root, "bob", BOB_PW))
        cc.unlock("alice", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW, ext="bin"))
        assert one(cc, rsa, "bob").counts == counts(TEXTS["small"])
        for key in ("alice", "bob"):
            r = one(cc, both, key)
            assert r.error is None and r.counts == counts(TEXTS["lines"])
        # Signed, then encrypted: the literal data is counted; the signature is not verified.
        r = one(cc, signed, "alice")
        assert r.error is None and r.counts == counts(TEXTS["small"])
        # Bob cannot read what was encrypted to Alice only.
        r = one(cc, signed, "bob")
        assert r.error.code == "decrypt_failed"


def test_failures(pgp):
    g, root = pgp
    good = encrypt(g, root, "f-good.gpg", "--compress-algo", "none", text="lines")
    to_eve = encrypt(g, root, "f-eve.gpg", recipients=("eve",))
    wrong_pw = symmetric(g, root, "f-wrongpw.gpg", pw="another passphrase")
    tampered = root / "f-tampered.gpg"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    truncated = root / "f-truncated.gpg"
    truncated.write_bytes(good.read_bytes()[: len(data) - 100])
    # gpg still writes a message without integrity protection (the old SED packet, no MDC)
    # when asked for RFC 2440 and a 64-bit block cipher.
    nomdc = symmetric(g, root, "f-nomdc.gpg", "--rfc2440", "--cipher-algo", "CAST5")
    listing = g.run("--list-packets", str(nomdc), passphrase=SYM_PW, check=False).stdout.decode()
    assert ":encrypted data packet:" in listing
    garbage = root / "f-garbage.gpg"
    # Random bytes could begin with a valid packet header by chance (then decrypt_failed, not
    # bad_format): a first byte without bit 7 set is never an OpenPGP packet tag.
    noise = os.urandom(3000).replace(b"\x84", b"\x00").replace(b"\x8c", b"\x00")
    garbage.write_bytes(bytes([noise[0] & 0x7F]) + noise[1:])
    plain = root / "small.txt"
    with Coprocess() as cc:
        cc.unlock("k", cipher="openpgp", secret={**keys_secret(root, "alice", ALICE_PW), "passphrase": ALICE_PW})
        cc.unlock("sym", cipher="openpgp", secret=SYM_PW)
        assert one(cc, good, "k").counts == counts(TEXTS["lines"])
        for path, key in ((to_eve, "k"), (wrong_pw, "sym"), (tampered, "k"), (truncated, "k"), (nomdc, "sym")):
            r = one(cc, path, key)
            assert r.error is not None and r.error.code == "decrypt_failed", (path.name, r)
            assert r.counts in (None, [])
        assert "integrity" in one(cc, nomdc, "sym").error.message
        for path in (garbage, plain):
            assert one(cc, path, "k").error.code == "bad_format"


def test_data_after_the_message_is_refused(pgp):
    """A binary message ends with its encrypted data packet: bytes after it (an extended file,
    two messages joined) make gpg call the file manipulated, and here decrypt_failed, on every
    path: in memory (small), streamed (over 1 MiB, compressed inside), librnp's (TWOFISH).
    After an armored message's END line, text is ignored, as gpg ignores it."""
    g, root = pgp
    big = root / "trail-big.txt"
    big.write_bytes(TEXTS["lines"] * 20)  # about 1.2 MB of text, compressed by gpg
    made = {
        "small": symmetric(g, root, "t-small.gpg", "--compress-algo", "none"),
        "streamed": symmetric(g, root, "t-big.gpg", text="trail-big"),
        "librnp": symmetric(g, root, "t-twofish.gpg", "--cipher-algo", "TWOFISH", text="lines"),
        "public-key": encrypt(g, root, "t-pk.gpg", "--compress-algo", "none"),
    }
    expect = {"small": counts(TEXTS["small"]), "streamed": [c * 20 for c in counts(TEXTS["lines"])],
              "librnp": counts(TEXTS["lines"]), "public-key": counts(TEXTS["small"])}
    armored = symmetric(g, root, "t-armor.asc", "--armor")
    armored_trailing = root / "t-armor-trailing.asc"
    armored_trailing.write_bytes(armored.read_bytes() + b"some text after the END line\n")
    with Coprocess() as cc:
        cc.unlock("sym", cipher="openpgp", secret=SYM_PW)
        cc.unlock("k", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW))
        for name, path in made.items():
            key = "k" if name == "public-key" else "sym"
            assert one(cc, path, key).counts == expect[name], name
            for suffix, extra in (("byte", b"\x00"), ("newline", b"\n"), ("text", b"garbage"),
                                  ("packet", b"\xc0"), ("joined", made["small"].read_bytes())):
                extended = root / f"t-{name}-{suffix}.gpg"
                extended.write_bytes(path.read_bytes() + extra)
                r = one(cc, extended, key)
                assert r.error is not None and r.error.code == "decrypt_failed", (name, suffix, r)
                assert "data follows the encrypted message" in r.error.message, (name, suffix)
        assert one(cc, armored_trailing, "sym").counts == counts(TEXTS["small"])


def test_bad_secrets(pgp):
    _, root = pgp
    with Coprocess() as cc:
        bad = [
            {"keys": (root / "alice.asc").read_bytes(), "passphrase": "not the passphrase"},
            {"keys": (root / "alice.asc").read_bytes()},  # protected, no passphrase
            {"keys": b"not a key at all"},
            {},
            {"passphrase": ""},
            {"keys": (root / "alice.asc").read_bytes(), "passphrase": ALICE_PW, "extra": 1},
            ["a list"],
            "",
        ]
        for secret in bad:
            with pytest.raises(RequestError) as e:
                cc.unlock("x", cipher="openpgp", secret=secret)
            assert e.value.code == "bad_secret"
            assert ALICE_PW not in str(e.value)


def test_message_passphrase_limit_is_librnps_on_every_path(pgp):
    """librnp opens no message with a passphrase over 255 bytes; the fast path (AES) could, which
    made the same passphrase open an AES message and not a Camellia one. 255 bytes opens both;
    256, for messages alone, is refused at unlock."""
    g, root = pgp
    ok_pw, long_pw = "p" * 255, "q" * 256
    files = [
        symmetric(g, root, "lim255-aes.gpg", "--cipher-algo", "AES256", pw=ok_pw),
        symmetric(g, root, "lim255-camellia.gpg", "--cipher-algo", "CAMELLIA128", pw=ok_pw),
    ]
    with Coprocess() as cc:
        cc.unlock("ok", cipher="openpgp", secret=ok_pw)
        for f in files:
            r = one(cc, f, "ok")
            assert r.error is None and r.counts == counts(TEXTS["small"]), (f.name, r.error)
        for secret in (long_pw, {"passphrase": long_pw}):
            with pytest.raises(RequestError) as e:
                cc.unlock("long", cipher="openpgp", secret=secret)
            assert e.value.code == "bad_secret" and "255" in str(e.value)
            assert long_pw not in str(e.value)


def test_large_file_streamed(pgp):
    g, root = pgp
    line = b"a 20 MB message: the rain, the password, and more text to fill the line\n"
    big = root / "big.txt"
    reps = (20 << 20) // len(line) + 1
    big.write_bytes(line * reps)
    f = root / "big.gpg"
    g.run("--compress-algo", "zlib", "-r", "alice@example.org", "-e", "-o", str(f), str(big))
    with Coprocess() as cc:
        cc.unlock("alice", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW))
        r = one(cc, f, "alice")
        assert r.error is None
        assert r.bytes == len(line) * reps
        assert r.counts == [c * reps for c in counts(line)]


def test_pass_store_and_key_isolation(pgp):
    g, root = pgp
    store = root / "password-store"
    (store / "web").mkdir(parents=True)
    (store / "mail").mkdir()
    (store / ".gpg-id").write_text("alice@example.org\n")
    entries = {
        "web/github": b"hunter2password\nuser: alice\nurl: the github\n",
        "web/bank": b"s3cr3t\npin: 1234\nthe rain account\n",
        "mail/work": b"password password\n",
        "top": b"nothing to see\n",
    }
    for name, text in entries.items():
        src = root / "entry.txt"
        src.write_bytes(text)
        # What `pass insert` runs.
        g.run("-o", str(store / f"{name}.gpg"), "--quiet", "--compress-algo=none", "--no-encrypt-to",
              "-r", "alice@example.org", "-e", str(src))
    paths = sorted(str(p) for p in store.rglob("*.gpg"))
    assert len(paths) == len(entries)
    with Coprocess() as cc:
        cc.unlock("pass", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW))
        cc.unlock("eve", cipher="openpgp", secret=keys_secret(root, "eve", EVE_PW))
        for _ in range(2):  # the second pass comes from the plaintext cache
            for r in cc.count(paths, terms=TERMS, key="pass"):
                name = os.path.relpath(paths[r.index], store)[: -len(".gpg")]
                assert r.error is None and r.counts == counts(entries[name])
        # Another key never reads plaintext this key decrypted (cache included).
        for r in cc.count(paths, terms=TERMS, key="eve"):
            assert r.error.code == "decrypt_failed" and not r.cached
        # auto recognises OpenPGP files and uses the openpgp key.
        for r in cc.count(paths + [str(root / "small.txt")], terms=TERMS, cipher="auto", key="pass"):
            if r.index < len(paths):
                assert r.error is None and r.cipher == "openpgp"
            else:
                assert r.cipher == "plain" and r.counts == counts(TEXTS["small"])


def test_gnupg_home(pgp):
    g, root = pgp
    f = encrypt(g, root, "home.gpg", recipients=("alice", "bob"), text="lines")
    with Coprocess() as cc:
        cc.unlock("home", cipher="openpgp", secret={"gnupg_home": str(g.home), "passphrase": ALICE_PW})
        r = one(cc, f, "home")
        assert r.error is None and r.counts == counts(TEXTS["lines"])
        with pytest.raises(RequestError) as e:
            cc.unlock("bad", cipher="openpgp", secret={"gnupg_home": str(g.home), "passphrase": "wrong"})
        assert e.value.code == "bad_secret"
        with pytest.raises(RequestError) as e:
            cc.unlock("bad", cipher="openpgp", secret={"gnupg_home": str(root / "nowhere"), "passphrase": "x"})
        assert e.value.code == "bad_secret"


def test_repeat_with_plaintext_cache_off(pgp):
    g, root = pgp
    small = [encrypt(g, root, f"r-{i}.gpg", "--compress-algo", "none") for i in range(3)]
    sym = symmetric(g, root, "r-sym.gpg", "--compress-algo", "none")
    big = encrypt(g, root, "r-lines.gpg", "--compress-algo", "zlib", text="lines")
    paths = [str(p) for p in small + [sym, big]]
    with Coprocess(args=("--cache-mb", "0")) as cc:
        cc.unlock("k", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW))
        cc.unlock("s", cipher="openpgp", secret=SYM_PW)
        for _ in range(3):  # the first pass finds the session keys, the others reuse them
            for r in cc.count(paths[:3] + paths[4:], terms=TERMS, key="k"):
                text = "lines" if r.index == 3 else "small"
                assert r.error is None and not r.cached and r.counts == counts(TEXTS[text])
            r = one(cc, sym, "s")
            assert r.error is None and not r.cached and r.counts == counts(TEXTS["small"])


def test_cli(pgp, tmp_path):
    g, root = pgp
    f = encrypt(g, root, "cli.gpg", recipients=("alice",))
    sym = symmetric(g, root, "cli-sym.gpg")
    binary = os.environ.get("CRYPTCOUNT_BIN") or str(Path(__file__).resolve().parents[2] / ".build/debug/cryptcount")
    env = dict(os.environ, PGPPASS=ALICE_PW, SYMPASS=SYM_PW)

    def cli(*args):
        return subprocess.run([binary, "count", "--json", "-t", "rain", *args], capture_output=True, env=env,
                              timeout=120)

    r = cli("--cipher", "openpgp", "--gnupg-home", str(g.home), "--secret-env", "PGPPASS", str(f))
    assert r.returncode == 0, r.stderr
    assert b'"counts":[1]' in r.stdout.replace(b" ", b"")
    r = cli("--cipher", "openpgp", "--keys-file", str(root / "alice.asc"), "--secret-env", "PGPPASS", str(f))
    assert r.returncode == 0, r.stderr
    r = cli("--cipher", "openpgp", "--secret-env", "SYMPASS", str(sym), str(f))
    assert r.returncode == 2 and b"decrypt_failed" in r.stderr
    r = cli("--cipher", "auto", "--keys-file", str(root / "alice.asc"), "--secret-env", "PGPPASS",
            str(f), str(root / "small.txt"))
    assert r.returncode == 0, r.stderr
    r = cli("--cipher", "openpgp", "--gnupg-home", str(g.home), "--secret-env", "SYMPASS", str(f))
    assert r.returncode == 1 and b"bad_secret" in r.stderr or b"not a valid openpgp key" in r.stderr
    assert ALICE_PW.encode() not in r.stderr + r.stdout


def session_keys(cc: Coprocess):
    s = cc.stats()["session_keys"]
    return s["hits"], s["misses"]


def tamper(src: Path, dst: Path, at: int) -> Path:
    data = bytearray(src.read_bytes())
    data[at] ^= 0x01
    dst.write_bytes(bytes(data))
    return dst


def test_session_key_cache_covers_compressed_armored_large_and_rsa(pgp):
    """A repeated query with the plaintext cache off takes every session key from the cache:
    observed through `stats`' session_keys.hits, which only a cache lookup that found the key
    increments (the first pass must miss, the second must hit, file for file)."""
    g, root = pgp
    big = root / "sk-big.txt"
    if not big.exists():
        big.write_bytes(TEXTS["lines"] * 20)  # ~1.9 MB: beyond the in-memory path
    TEXTS_BIG = {**TEXTS, "sk-big": big.read_bytes()}
    cases = []  # (path, key, text)
    for compress in ("zlib", "zip", "bzip2"):
        for armor in (False, True):
            opts = ["--compress-algo", compress] + (["--armor"] if armor else [])
            cases.append((encrypt(g, root, f"sk-a-{compress}-{armor}.gpg", *opts, text="lines"), "alice", "lines"))
            cases.append((encrypt(g, root, f"sk-b-{compress}-{armor}.gpg", *opts, recipients=("bob",)), "bob",
                          "small"))
    # gpg's defaults (compression on), RSA-3072, armored and binary; a big one each way.
    cases.append((encrypt(g, root, "sk-b-default.asc", "--armor", recipients=("bob",), text="lines"), "bob", "lines"))
    cases.append((encrypt(g, root, "sk-b-big.gpg", "--compress-algo", "none", recipients=("bob",), text="sk-big"),
                  "bob", "sk-big"))
    cases.append((encrypt(g, root, "sk-a-big.asc", "--armor", text="sk-big"), "alice", "sk-big"))
    cases.append((symmetric(g, root, "sk-s-zlib.asc", "--armor", "--compress-algo", "zlib", text="lines"), "sym",
                  "lines"))
    cases.append((symmetric(g, root, "sk-s-big.gpg", "--compress-algo", "none", text="sk-big"), "sym", "sk-big"))
    with Coprocess(args=("--cache-mb", "0")) as cc:
        cc.unlock("alice", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW))
        cc.unlock("bob", cipher="openpgp", secret=keys_secret(root, "bob", BOB_PW))
        cc.unlock("sym", cipher="openpgp", secret=SYM_PW)
        for round_ in range(3):
            for path, key, text in cases:
                h0, m0 = session_keys(cc)
                r = one(cc, path, key)
                h1, m1 = session_keys(cc)
                assert r.error is None and not r.cached, (path.name, r.error)
                assert r.counts == counts(TEXTS_BIG[text]) and r.bytes == len(TEXTS_BIG[text]), path.name
                if round_ == 0:
                    assert (h1 - h0, m1 - m0) == (0, 1), path.name
                else:
                    assert (h1 - h0, m1 - m0) == (1, 0), (round_, path.name)


def test_session_key_cache_key_isolation(pgp):
    """Session keys cached by one key never answer for another: another secret key, another
    passphrase, or the same secrets unlocked again after `forget` (the cache went with the key)."""
    g, root = pgp
    to_alice = [encrypt(g, root, f"iso-a-{c}.gpg", "--compress-algo", c, text="lines") for c in ("zlib", "bzip2")]
    to_alice.append(encrypt(g, root, "iso-a.asc", "--armor"))
    to_bob = encrypt(g, root, "iso-b.gpg", recipients=("bob",))
    sym = symmetric(g, root, "iso-s.asc", "--armor")
    with Coprocess(args=("--cache-mb", "0")) as cc:
        cc.unlock("alice", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW))
        cc.unlock("bob", cipher="openpgp", secret=keys_secret(root, "bob", BOB_PW))
        cc.unlock("sym", cipher="openpgp", secret=SYM_PW)
        for _ in range(2):  # fill the caches, then use them
            for p in to_alice:
                assert one(cc, p, "alice").error is None
            assert one(cc, to_bob, "bob").error is None
            assert one(cc, sym, "sym").error is None
        cc.unlock("eve", cipher="openpgp", secret=keys_secret(root, "eve", EVE_PW))
        cc.unlock("other", cipher="openpgp", secret="another passphrase")
        h0, _ = session_keys(cc)
        for path, key in [(p, "eve") for p in to_alice] + [(to_bob, "alice"), (to_alice[0], "bob"),
                                                             (sym, "other"), (sym, "eve"), (to_bob, "sym")]:
            r = one(cc, path, key)
            assert r.error is not None and r.error.code == "decrypt_failed" and not r.counts, (path.name, key)
        assert session_keys(cc)[0] == h0
        # Forgotten with its key: the same secrets unlocked again start with an empty cache.
        cc.forget("alice")
        cc.unlock("alice", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW))
        h1, m1 = session_keys(cc)
        assert one(cc, to_alice[0], "alice").counts == counts(TEXTS["lines"])
        assert session_keys(cc) == (h1, m1 + 1)


def test_session_key_cache_damage_still_fails(pgp):
    """With the session key cached, a damaged message (compressed, armored, large, or with a
    bad RSA PKCS#1 payload) is still decrypt_failed, and the coprocess goes on."""
    g, root = pgp
    big = root / "dmg-big.txt"
    big.write_bytes(TEXTS["lines"] * 20)
    zlib_msg = encrypt(g, root, "dmg-zlib.gpg", "--compress-algo", "zlib", text="lines")
    large = encrypt(g, root, "dmg-large.gpg", "--compress-algo", "none", text="dmg-big")
    rsa = encrypt(g, root, "dmg-rsa.gpg", "--compress-algo", "zip", recipients=("bob",), text="lines")
    armored = encrypt(g, root, "dmg-armored.asc", "--armor", "--compress-algo", "none", text="dmg-big")
    with Coprocess(args=("--cache-mb", "0")) as cc:
        cc.unlock("alice", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW))
        cc.unlock("bob", cipher="openpgp", secret=keys_secret(root, "bob", BOB_PW))
        for path, key in ((zlib_msg, "alice"), (large, "alice"), (rsa, "bob"), (armored, "alice")):
            assert one(cc, path, key).error is None
        n = len(zlib_msg.read_bytes())
        damaged = [
            (tamper(zlib_msg, root / "dmg-zlib-mid.gpg", n // 2), "alice"),
            (tamper(zlib_msg, root / "dmg-zlib-end.gpg", n - 5), "alice"),  # inside the MDC
            (tamper(large, root / "dmg-large-mid.gpg", len(large.read_bytes()) // 2), "alice"),
            (tamper(rsa, root / "dmg-rsa-mid.gpg", len(rsa.read_bytes()) - 200), "bob"),
        ]
        # A truncated large message, and an armored one with a changed base64 character.
        data = large.read_bytes()
        (root / "dmg-large-cut.gpg").write_bytes(data[: len(data) - 1000])
        damaged.append((root / "dmg-large-cut.gpg", "alice"))
        text = bytearray(armored.read_bytes())
        mid = len(text) // 2
        while not chr(text[mid]).isalnum():
            mid += 1
        text[mid] = ord("A") if text[mid] != ord("A") else ord("B")
        (root / "dmg-armored-mid.asc").write_bytes(bytes(text))
        damaged.append((root / "dmg-armored-mid.asc", "alice"))
        h0, _ = session_keys(cc)
        for path, key in damaged:
            r = one(cc, path, key)
            assert r.error is not None and r.error.code == "decrypt_failed" and not r.counts, path.name
        assert session_keys(cc)[0] > h0  # the damage was found with the cached session keys
        # A bad RSA payload: the PKESK's MPI changed (PKCS#1 padding fails): decrypt_failed.
        raw = bytearray(rsa.read_bytes())
        header = 3 if raw[0] & 0x40 == 0 and raw[0] & 3 == 1 else 2
        raw[header + 12 + 100] ^= 0x40
        (root / "dmg-rsa-pkesk.gpg").write_bytes(bytes(raw))
        r = one(cc, root / "dmg-rsa-pkesk.gpg", "bob")
        assert r.error is not None and r.error.code == "decrypt_failed"
        assert one(cc, rsa, "bob").counts == counts(TEXTS["lines"])


# -- gpg-agent's key files, in every form its parser reads --------------------------------------

def _join_key_value(text: bytes) -> bytes:
    """The `Key:` value of a private-keys-v1.d file as gpg-agent joins it: each piece without
    one leading and all trailing whitespace, with nothing between (a blank line, a newline)."""
    lines = text.split(b"\n")
    start = next(i for i, ln in enumerate(lines) if ln.lower().startswith(b"key:"))
    pieces = [lines[start][4:]]
    for ln in lines[start + 1:]:
        if not (ln[:1] in (b" ", b"\t") or not ln.strip()):
            break
        pieces.append(ln)
    return b"".join(p[1:].rstrip() if p[:1].isspace() else p.rstrip() for p in pieces)


def _quoted(data: bytes) -> bytes:
    """`data` as a libgcrypt quoted string using every kind of escape its parser reads: the
    letter escapes, backslash-quote, `\\xHH` (either case), three octal digits, and bytes as
    they are (printable ASCII and 0xA0-0xFF)."""
    letters = {0x08: b"b", 0x09: b"t", 0x0B: b"v", 0x0A: b"n", 0x0C: b"f", 0x0D: b"r"}
    out = bytearray(b'"')
    for i, b in enumerate(data):
        if b in letters:
            out += b"\\" + letters[b]
        elif b in b"\"'\\":
            out += b"\\" + bytes([b])
        elif (0x20 <= b < 0x7F or b >= 0xA0) and i % 3 != 2:
            out.append(b)
        elif i % 2:
            out += b"\\x%02x" % b if i % 4 == 1 else b"\\x%02X" % b
        else:
            out += b"\\%03o" % b
    return bytes(out + b'"')


def _requoted(value: bytes) -> bytes:
    """The value with every short hex atom (salt, nonce or iv; not the key data) quoted."""
    out = bytearray()
    i = 0
    while i < len(value):
        c = value[i:i + 1]
        if c == b'"':  # an existing quoted string, kept as it is
            j = i + 1
            while value[j:j + 1] != b'"':
                assert j < len(value), "an unterminated quoted string"
                j += 2 if value[j:j + 1] == b"\\" else 1
            out += value[i:j + 1]
            i = j + 1
        elif c == b"#":
            j = value.index(b"#", i + 1)
            hexed = value[i + 1:j]
            out += _quoted(bytes.fromhex(hexed.decode())) if len(hexed) <= 32 else value[i:j + 1]
            i = j + 1
        else:
            out += c
            i += 1
    return bytes(out)


def _wrapped(value: bytes, width: int) -> bytes:
    """`Key:` and the value in lines of about `width` bytes, broken anywhere (inside atoms and
    escapes too) as gpg-agent's writer breaks a line without a space near its end, each
    continuation starting with one space; a piece never ends in whitespace (it would be lost)."""
    lines = []
    i = 0
    while i < len(value):
        n = min(width, len(value) - i)
        while n > 1 and value[i + n - 1:i + n].isspace():
            n -= 1
        lines.append(b" " + value[i:i + n])
        i += n
    return b"Key:" + b"\n".join(lines) + b"\n"


def test_gnupg_home_key_files_in_every_form_gpg_agent_reads(pgp, tmp_path):
    """gpg-agent writes a salt or nonce that is mostly printable as a quoted string with escapes
    (`"w\\x00..."`, `"...k\\b+..."`) and breaks the `Key:` value every 70 bytes or so, inside an
    atom too. A copy of the home whose key files have every short atom quoted with every escape
    and the values broken every 23 bytes: gpg itself still decrypts with it (so the files are
    valid), and so does cryptcount, with the same counts. Before, about one GnuPG home in 30
    (a quoted salt or nonce with `\\x` or `\\b`) could not decrypt."""
    g, root = pgp
    f = encrypt(g, root, "forms.gpg", recipients=("alice",), text="lines")
    home = Path(tempfile.mkdtemp(prefix="ccfm", dir="/tmp"))  # short: gpg-agent's socket
    try:
        shutil.copytree(g.home, home / "g", ignore=shutil.ignore_patterns("S.*", "*.lock", ".#*"))
        files = 0
        for key in (home / "g" / "private-keys-v1.d").glob("*.key"):
            text = key.read_bytes()
            assert text.startswith(b"Created:") or b"\nKey:" in text, "not the extended key format"
            new = _requoted(_join_key_value(text))
            # Every salt and nonce is now quoted: by `_requoted`, or already by gpg-agent (it
            # quotes a mostly printable one, so a file may come out unchanged).
            assert b'"' in new and not re.search(rb"#[0-9A-Fa-f]{1,32}#", new), new
            head = text[: text.index(b"Key:")]
            key.write_bytes(head + _wrapped(new, 23))
            files += 1
        assert files >= 6  # three keys, two key files each, every one with a salt and a nonce
        forms = GnuPG.__new__(GnuPG)
        forms.home, forms.env = home / "g", dict(os.environ, GNUPGHOME=str(home / "g"))
        try:
            with Coprocess() as cc:
                cc.unlock("forms", cipher="openpgp", secret={"gnupg_home": str(forms.home), "passphrase": ALICE_PW})
                r = one(cc, f, "forms")
                assert r.error is None and r.counts == counts(TEXTS["lines"]), r
            out = forms.run("-d", str(f), passphrase=ALICE_PW).stdout
            assert out == TEXTS["lines"]  # gpg-agent reads the rewritten files the same way
        finally:
            forms.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_auto_recognises_every_kind_of_message_gpg_writes(pgp):
    """`auto` checks a binary message's first packet beyond its version (the algorithm bytes),
    so that random bytes are rarely taken for OpenPGP: every kind gpg writes is still recognised
    and counted. Public-key messages to X25519 and RSA keys and to both, hidden recipients
    (`--throw-keyids`), passphrase messages with each S2K mode and several ciphers, armored."""
    g, root = pgp
    made = {
        "x25519": encrypt(g, root, "k-x.gpg"),
        "rsa": encrypt(g, root, "k-rsa.gpg", recipients=("bob",)),
        "both": encrypt(g, root, "k-both.gpg", recipients=("bob", "alice")),
        "hidden": encrypt(g, root, "k-hidden.gpg", "--throw-keyids", recipients=("alice",)),
        "armored": encrypt(g, root, "k-arm.asc", "--armor", recipients=("bob",)),
    }
    for mode in ("0", "1", "3"):
        made[f"s2k{mode}"] = symmetric(g, root, f"k-s2k{mode}.gpg", "--s2k-mode", mode, "--s2k-digest-algo", "SHA256")
    for algo in ("AES", "AES192", "TWOFISH", "CAMELLIA256", "CAST5"):
        made[algo] = symmetric(g, root, f"k-{algo}.gpg", "--cipher-algo", algo)
    with Coprocess() as cc:
        cc.unlock("all", cipher="openpgp", secret=keys_secret(root, "alice", ALICE_PW))
        cc.unlock("sym", cipher="openpgp", secret=SYM_PW)
        cc.unlock("rsa", cipher="openpgp", secret=keys_secret(root, "bob", BOB_PW))
        for key, names in (("all", ["x25519", "both", "hidden"]), ("rsa", ["rsa", "armored"]),
                           ("sym", ["s2k0", "s2k1", "s2k3", "AES", "AES192", "TWOFISH", "CAMELLIA256", "CAST5"])):
            paths = [str(made[n]) for n in names]
            results = sorted(cc.count(paths, terms=TERMS, cipher="auto", keys=[key]), key=lambda r: r.index)
            got = [(n, r.cipher, r.error.code if r.error else r.counts) for n, r in zip(names, results)]
            assert got == [(n, "openpgp", counts(TEXTS["small"])) for n in names]


def test_damaged_messages_leave_stderr_to_cryptcount(pgp):
    """librnp prints its own diagnostics to stderr for every damaged message (`[func() file.cpp:N]
    mdc header check failed`); the coprocess turns them off (the file's error says what failed)
    below `--log-level debug`, and `count` always."""
    from cc_harness import Serve, binary

    g, root = pgp
    good = encrypt(g, root, "q-good.gpg", "--compress-algo", "none", text="lines")
    zipped = encrypt(g, root, "q-zlib.gpg", "--compress-algo", "zlib", text="lines")
    sym = symmetric(g, root, "q-sym.gpg", "--cipher-algo", "TWOFISH", text="lines")  # librnp's own path
    damaged = {"k": [], "s": []}
    for src, key in ((good, "k"), (zipped, "k"), (sym, "s")):
        data = src.read_bytes()
        for cut in (60, len(data) // 2, len(data) - 5):
            p = root / f"q-cut-{cut}-{src.name}"
            p.write_bytes(data[:cut])
            damaged[key].append(str(p))
    secrets = {"k": keys_secret(root, "alice", ALICE_PW), "s": SYM_PW}
    for level, loud in (("warn", False), ("info", False), ("debug", True)):
        with Serve("--cache-mb", "0", "--log-level", level) as s:
            for key, paths in damaged.items():
                unlock = {"op": "unlock", "id": "u" + key, "name": key, "cipher": "openpgp", "secret": secrets[key]}
                assert s.one(unlock)["type"] == "ok"
                rs = s.request({"op": "count", "id": key, "files": paths, "terms": ["rain"], "key": key})
                files = [r for r in rs if r["type"] == "file"]
                assert len(files) == len(paths) and all(r["error"]["code"] == "decrypt_failed" for r in files), files
            s.close_input()
            assert s.proc.wait(timeout=30) == 0
            librnp_lines = [line for line in s.stderr_text().splitlines() if ".cpp:" in line]
            assert bool(librnp_lines) == loud, (level, librnp_lines[:3])
    r = subprocess.run([binary(), "count", "--cipher", "openpgp", "--secret-env", "SYMPASS", "-t", "rain",
                        *damaged["s"]], capture_output=True, env=dict(os.environ, SYMPASS=SYM_PW), timeout=120)
    assert r.returncode == 2
    lines = r.stderr.decode().splitlines()
    assert len([line for line in lines if "decrypt_failed" in line]) == len(damaged["s"]), lines
    assert not [line for line in lines if ".cpp:" in line], lines
