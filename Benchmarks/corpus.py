"""Benchmark corpora: generated once under Benchmarks/corpus/ (gitignored) and reused.

- plain/    2,000 diary stories (~5 KB of text each), deterministic
- bio/      the same stories in the seed's `biographer` format (~80 KB each, ~160 MB)
- fernet/   the same stories as Fernet tokens (Python cryptography)
- age/      the same stories as age files (X25519 recipient, via pyrage)
- big.txt   one 1 GiB plaintext file (256 MiB with BENCH_QUICK=1... see run.py)
"""

import os
import random



STORIES = 2000
PASSWORD = b"correct horse battery staple"
FERNET_KEY = b"mBqJNSv5vJdY0fy7i3CfGOkDgDmv9vG3j3rS6ovVA2U="  # fixed: corpora are reproducible
VERSION = "3"  # bump when the generator changes; a stale corpus is regenerated

COMMON = (
    "the and to of a in was that it he she i you his her had with for as on at by but not we they "
    "be this from or have one all were my there when so what out up into if then about would could"
).split()
MEDIUM = (
    "garden morning letter window river evening mother father village winter summer journey "
    "kitchen doctor church market forest station harbour bridge candle silence promise stranger "
    "lantern orchard meadow cottage chapel parlour thunder whisper"
).split()
RARE = "lighthouse zeppelin marmalade telegram gramophone velocipede".split()


def _vocabulary(rng):
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    made = set()
    while len(made) < 3000:
        n = rng.randint(3, 10)
        made.add("".join(rng.choice(letters[: 10 + n]) for _ in range(n)))
    made -= set(COMMON) | set(MEDIUM) | set(RARE)
    return sorted(made)


def _weights(words, common, medium, rare):
    import numpy as np

    w = []
    for i, _ in enumerate(common):
        w.append(40.0 / (i + 1))
    for _ in medium:
        w.append(0.08)
    for _ in rare:
        w.append(0.004)
    for i, _ in enumerate(words):
        w.append(2.0 / (i + 10))
    w = np.array(w)
    return w / w.sum()


def make_text(rng_np, vocab, probs, nbytes):
    """Sentences of words drawn from a Zipf-like distribution, about nbytes long."""
    n = max(1, nbytes // 4)
    idx = rng_np.choice(len(vocab), size=n, p=probs)
    words = [vocab[i] for i in idx]
    out = []
    line = []
    for k, w in enumerate(words):
        line.append(w)
        if k % 13 == 12:
            out.append(" ".join(line) + ".")
            line = []
        if k % 90 == 89:
            out.append("\n\n")
    out.append(" ".join(line))
    text = " ".join(out).encode()
    return text[:nbytes] if len(text) > nbytes else text


def _hex(a):
    import numpy as np

    HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty(a.size * 2, dtype=np.uint8)
    out[0::2] = HEX[a >> 4]
    out[1::2] = HEX[a & 15]
    return out


def biographer_shift(pw):
    return sum(pw.hex().encode()) % 256


def biographer_encrypt(plain, pw, iv):
    """The seed's writer (shared/seed/biographer-format.md), vectorised with numpy."""
    import numpy as np

    t = np.frombuffer(plain, dtype=np.uint8)
    for _ in range(4):
        t = _hex(t)
    c = np.concatenate([np.frombuffer(iv, dtype=np.uint8), t])
    # c[i] ^= c[i-8] in increasing i: a running XOR down each of the 8 columns.
    c = np.bitwise_xor.accumulate(c.reshape(-1, 8), axis=0).reshape(-1)
    c = (c + np.uint8(biographer_shift(pw))).astype(np.uint8)
    c ^= np.resize(np.frombuffer(pw, dtype=np.uint8), c.size)
    return c.tobytes()


def seed_decrypt(c, pw):
    """The seed's pure-Python decrypter: byte loops, then four unhex passes."""
    amount = biographer_shift(pw)
    n = len(pw)
    d = bytearray(len(c))
    for i in range(len(c)):
        d[i] = ((c[i] ^ pw[i % n]) - amount) & 0xFF
    for i in range(len(d) - 1, 7, -1):
        d[i] ^= d[i - 8]
    t = bytes(d[8:])
    for _ in range(4):
        t = bytes.fromhex(t.decode("ascii"))
    return t


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def fresh_in_page_cache(path):
    """Drops a file's pages from the page cache and reads it back whole, so that every run measures
    it in the same state: the state a first read leaves. How the page cache held the big file
    (after it was written, or after weeks of other use) changed the kernel's copy in `read()` by
    2x, and with it every ratio whose two sides both pay that copy (one term took 34 ms of CPU
    on 256 MiB before this, 19 ms after)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while os.read(fd, 1 << 24):
            pass
    finally:
        os.close(fd)


def ensure(root, big_bytes, log):
    """Creates whatever is missing; returns a dict of paths."""
    os.makedirs(root, exist_ok=True)
    stamp = os.path.join(root, "VERSION")
    if not os.path.exists(stamp) or open(stamp).read() != VERSION:
        import shutil

        for sub in ("plain", "bio", "fernet", "age"):
            shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
        for f in os.listdir(root):
            if f.startswith("big"):
                os.remove(os.path.join(root, f))
        _write(stamp, VERSION.encode())
    rng = random.Random(1234)
    made = {}

    def text_source():
        # Only when something is generated: numpy stays out of a measuring process otherwise.
        if not made:
            import numpy as np

            extra = _vocabulary(random.Random(99))
            made["rng"] = np.random.default_rng(1234)
            made["vocab"] = COMMON + MEDIUM + RARE + extra
            made["probs"] = _weights(extra, COMMON, MEDIUM, RARE)
        return made["rng"], made["vocab"], made["probs"]
    names = [f"story-{i:05d}" for i in range(STORIES)]
    dirs = {k: os.path.join(root, k) for k in ("plain", "bio", "fernet", "age")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)

    plain_paths = [os.path.join(dirs["plain"], n + ".txt") for n in names]
    if not all(os.path.exists(p) for p in plain_paths):
        log("generating 2,000 plaintext stories")
        rng_np, vocab, probs = text_source()
        for p in plain_paths:
            size = int(rng_np.integers(4000, 7000))
            _write(p, make_text(rng_np, vocab, probs, size))

    bio_paths = [os.path.join(dirs["bio"], n + ".bio") for n in names]
    if not all(os.path.exists(p) for p in bio_paths):
        log("encrypting stories (biographer, numpy)")
        for p, b in zip(plain_paths, bio_paths):
            iv = bytes(rng.randint(1, 254) for _ in range(8))
            _write(b, biographer_encrypt(open(p, "rb").read(), PASSWORD, iv))

    fernet_paths = [os.path.join(dirs["fernet"], n + ".fernet") for n in names]
    if not all(os.path.exists(p) for p in fernet_paths):
        from cryptography.fernet import Fernet

        log("encrypting stories (fernet)")
        f = Fernet(FERNET_KEY)
        for p, q in zip(plain_paths, fernet_paths):
            _write(q, f.encrypt(open(p, "rb").read()))

    age_paths = [os.path.join(dirs["age"], n + ".age") for n in names]
    identity_path = os.path.join(root, "age-identity.txt")
    if not os.path.exists(identity_path) or not all(os.path.exists(p) for p in age_paths):
        import pyrage

        log("encrypting stories (age, pyrage)")
        ident = pyrage.x25519.Identity.generate()
        _write(identity_path, (str(ident) + "\n").encode())
        rec = ident.to_public()
        for p, q in zip(plain_paths, age_paths):
            _write(q, pyrage.encrypt(open(p, "rb").read(), [rec]))

    big = os.path.join(root, f"big-{big_bytes >> 20}m.txt")
    if not os.path.exists(big):
        log(f"writing a {big_bytes >> 20} MiB plaintext file")
        rng_np, vocab, probs = text_source()
        block = make_text(rng_np, vocab, probs, 4 << 20)
        tmp = big + ".tmp"
        written = 0
        k = 0
        with open(tmp, "wb") as f:
            while written < big_bytes:
                cut = (k * 7919) % len(block)  # rotations put matches across every chunk edge
                piece = block[cut:] + block[:cut]
                piece = piece[: big_bytes - written]
                f.write(piece)
                written += len(piece)
                k += 1
        os.replace(tmp, big)

    return {
        "plain": plain_paths,
        "bio": bio_paths,
        "fernet": fernet_paths,
        "age": age_paths,
        "age_identity": identity_path,
        "big": big,
        "plain_dir": dirs["plain"],
    }
