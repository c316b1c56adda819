"""Benchmark rows for the `openpgp` cipher (target 10 of run.py).

A pass-style store (2,000 entries of 100 B to 4 KB, each encrypted by real gpg to one cv25519
key, as `pass insert` does) and one big message, made once under Benchmarks/corpus/openpgp/
and reused. Compared with what `pass grep` does: one `gpg --batch --decrypt` per file, then
a count. A second store (`ensure_compressed`) holds what gpg writes by default (compressed),
half of it armored: the session-key cache must cover it too.
"""

import os
import random
import shutil
import subprocess
import time

PASSPHRASE = "bench passphrase"
ENTRIES = 2000
WORDS = ("garden", "password", "login", "user", "email", "the", "account", "pin", "url", "note", "river")


def _gpg(home, *args, passphrase=None, data=None):
    cmd = ["gpg", "--homedir", home, "--batch", "--yes", "--quiet", "--trust-model", "always"]
    inp = data
    if passphrase is not None:
        cmd += ["--pinentry-mode", "loopback", "--passphrase-fd", "0"]
        inp = (passphrase + "\n").encode()
    return subprocess.run(cmd + list(args), input=inp, capture_output=True, check=True).stdout


def _entry_text(rnd, size):
    """`size` bytes of words (half from WORDS, half random) and a newline."""
    words = []
    n = 0
    while n < size:
        w = rnd.choice(WORDS) if rnd.random() < 0.5 else "".join(rnd.choice("abcdefghij") for _ in range(8))
        words.append(w)
        n += len(w) + 1
    return (" ".join(words)[:size] + "\n").encode()


def ensure(root, big_bytes, log):
    """Makes (or reuses) the corpus: {"home", "keys", "store", "entries", "big", "big_plain_count"}."""
    home = os.path.join(root, "gnupg")
    store = os.path.join(root, "store")
    big = os.path.join(root, f"big-{big_bytes >> 20}M.gpg")
    keys = os.path.join(root, "secret-keys.asc")
    done = os.path.join(root, ".complete")
    if not os.path.exists(done):
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(home, mode=0o700)
        log("openpgp corpus: generating a cv25519 key")
        _gpg(home, "--quick-gen-key", "Bench <bench@example.org>", "future-default", "default", "never",
             passphrase=PASSPHRASE)
        with open(keys, "wb") as f:
            f.write(_gpg(home, "--armor", "--export-secret-keys", "bench@example.org", passphrase=PASSPHRASE))
        log(f"openpgp corpus: encrypting {ENTRIES} entries with gpg (one process each, as pass does)")
        rnd = random.Random(12)
        os.makedirs(store)
        with open(os.path.join(store, ".gpg-id"), "w") as f:
            f.write("bench@example.org\n")
        for i in range(ENTRIES):
            d = os.path.join(store, f"site{i % 40:02d}")
            os.makedirs(d, exist_ok=True)
            size = rnd.randint(100, 4096)
            text = _entry_text(rnd, size)
            _gpg(home, "-o", os.path.join(d, f"entry{i:04d}.gpg"), "--compress-algo=none", "--no-encrypt-to",
                 "-r", "bench@example.org", "-e", data=text)
        if big_bytes:
            log(f"openpgp corpus: encrypting a {big_bytes >> 20} MiB message")
            line = b"a large OpenPGP message: the garden, the river, and a password now and then\n"
            reps = big_bytes // len(line)
            p = subprocess.Popen(
                ["gpg", "--homedir", home, "--batch", "--yes", "--quiet", "--trust-model", "always",
                 "--compress-algo", "none", "-r", "bench@example.org", "-e", "-o", big],
                stdin=subprocess.PIPE)
            chunk = line * 10000
            left = reps
            while left > 0:
                k = min(left, 10000)
                p.stdin.write(chunk if k == 10000 else line * k)
                left -= k
            p.stdin.close()
            p.wait()
            with open(big + ".count", "w") as f:
                f.write(str(reps * line.count(b"garden")))
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
        open(done, "w").close()
    entries = sorted(
        os.path.join(dp, f) for dp, _, fs in os.walk(store) for f in fs if f.endswith(".gpg"))
    big_count = int(open(big + ".count").read()) if os.path.exists(big + ".count") else None
    return {"home": home, "keys": keys, "store": store, "entries": entries, "big": big, "big_count": big_count}


COMPRESSED_ENTRIES = 400


def ensure_compressed(root, log):
    """Entries as gpg writes them by default (compressed with the key's preferred algorithm,
    ZLIB for a GnuPG key), every other one ASCII-armored, 1 to 16 KB of text each; made once
    with the key of `ensure` (which must have run)."""
    home = os.path.join(root, "gnupg")
    store = os.path.join(root, "store-compressed")
    done = os.path.join(root, ".complete-compressed")
    if not os.path.exists(done):
        shutil.rmtree(store, ignore_errors=True)
        os.makedirs(store)
        log(f"openpgp corpus: encrypting {COMPRESSED_ENTRIES} compressed entries, half armored")
        rnd = random.Random(13)
        for i in range(COMPRESSED_ENTRIES):
            size = rnd.randint(1024, 16384)
            text = _entry_text(rnd, size)
            armor = ["--armor"] if i % 2 else []
            _gpg(home, *armor, "-o", os.path.join(store, f"note{i:04d}.{'asc' if armor else 'gpg'}"), "--no-encrypt-to",
                 "-r", "bench@example.org", "-e", data=text)
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
        open(done, "w").close()
    return sorted(os.path.join(store, f) for f in os.listdir(store))


def gpg_loop(home, files, term):
    """What `pass grep` does: one gpg process per entry (through gpg-agent), then a count."""
    n = 0
    t0 = time.perf_counter()
    try:
        for p in files:
            out = subprocess.run(["gpg", "--homedir", home, "--batch", "--quiet", "--pinentry-mode", "loopback",
                                  "--passphrase-fd", "0", "--decrypt", p], input=(PASSPHRASE + "\n").encode(),
                                 capture_output=True, check=True).stdout
            n += out.count(term.encode())
        return time.perf_counter() - t0, n
    finally:
        # The agent the loop started would otherwise outlive the bench, beside the rows after it.
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
