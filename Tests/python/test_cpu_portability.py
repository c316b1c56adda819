"""The executable on CPUs older than this one: every SIMD kernel is chosen at run time (C targets
with per-function `target` attributes behind a CPU check), so a CPU without AVX-512 or without AVX
must get the same answers from the narrower kernels, and never an illegal instruction.

This machine's CPU runs the widest kernels, so the narrow paths are run under `qemu-x86_64`
(user-mode emulation) with three CPU models: `qemu64` (the x86-64 baseline: SSE2, SSE3, no SSSE3),
`Nehalem` (SSSE3 and SSE4.2, no AVX) and `max` (what QEMU's TCG emulates: AVX2 and BMI, no
AVX-512). The search plans differ by model (100 mixed terms: Teddy with AVX-512 VBMI natively, the
pair set with AVX2, Teddy with SSSE3 on Nehalem, the pair bitmap on the baseline). Each `cryptcount count --json`
below runs natively and under each model; the outputs must be byte-identical (counts, sizes,
errors). The runs cover every prefilter choice of the search plan (memchr, byte set, packed pair,
pair set, Teddy, the short-term counter, Wu-Manber, the pair bitmap), ignore_case, whole_word and
regular expressions on plain text, and each cipher's decryption path (biographer's kernels,
Fernet's one pass, age's X25519 and ChaCha20-Poly1305, openssl's AES-CBC, OpenPGP via librnp).
Skipped, saying so, where qemu-x86_64 is missing (`make deps` installs qemu-user) or the machine
is not x86-64."""

import os
import platform
import random
import shutil
import subprocess

import pytest

from cryptcount import biographer
from cc_harness import binary

QEMU = shutil.which("qemu-x86_64")
MODELS = ["qemu64", "Nehalem", "max"]

pytestmark = [
    pytest.mark.skipif(platform.machine() != "x86_64", reason="CPU models are emulated for x86-64 only"),
    pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 missing (apt qemu-user; `make deps` installs it)"),
]

COMMON = "the and to of a in was that it he she i you his her had with for as on at by but not we they".split()
MEDIUM = "garden morning letter window river evening mother father village winter summer journey".split()
RARE = "lighthouse zeppelin marmalade telegram gramophone velocipede".split()
EXTRA = ["Café", "ΣΊΣΥΦΟΣ", "straße", "naïve", "İstanbul", "K"]  # non-ASCII, for ignore_case


def text(rng, n):
    words = COMMON * 8 + MEDIUM * 2 + RARE + EXTRA + ["there", "about", "would", "could", "then", "that's"]
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 14)))
        line = line[0].upper() + line[1:] + rng.choice([".", ",", "!", "?", ";"]) + "\n"
        out.append(line)
        size += len(line.encode())
    return "".join(out).encode()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("portable")
    rng = random.Random(7)
    plain = d / "plain"
    plain.mkdir()
    # Sizes around the kernels' steps (16-1,024 bytes) and a few long texts; bytes outside ASCII,
    # NULs and invalid UTF-8 in one.
    for i, n in enumerate([0, 1, 15, 63, 64, 127, 129, 1000, 1025, 70_000, 600_000]):
        (plain / f"t{i:02}.txt").write_bytes(text(rng, n)[:n])
    (plain / "binary.bin").write_bytes(bytes(rng.randrange(256) for _ in range(50_000)) + text(rng, 20_000))
    secrets = d / "secrets"
    secrets.mkdir()
    story = text(rng, 120_000)
    # biographer: the seed's algorithm (Python), lengths around the kernels' blocks.
    bio = d / "bio"
    bio.mkdir()
    for i, n in enumerate([0, 1, 31, 64, 65, 1000, 120_000]):
        (bio / f"s{i}.bio").write_bytes(biographer.encrypt(story[:n], "pw ☃", rng=rng))
    (secrets / "bio").write_text("pw ☃")
    # fernet (cryptography), age (pyrage), openssl and OpenPGP (the real tools, when present).
    made = {"plain": plain, "bio": bio}
    from cryptography.fernet import Fernet
    import pyrage

    key = Fernet.generate_key()
    fernet = d / "fernet"
    fernet.mkdir()
    for i, n in enumerate([0, 100, 120_000]):
        (fernet / f"f{i}.token").write_bytes(Fernet(key).encrypt(story[:n]))
    (secrets / "fernet").write_bytes(key)
    made["fernet"] = fernet
    ident = pyrage.x25519.Identity.generate()
    age = d / "age"
    age.mkdir()
    for i, n in enumerate([0, 100, 65_536, 120_000]):
        (age / f"a{i}.age").write_bytes(pyrage.encrypt(story[:n], [ident.to_public()]))
    (secrets / "age").write_text(str(ident) + "\n")
    made["age"] = age
    (secrets / "pw").write_text("portable pw\n")
    src = d / "story.txt"
    src.write_bytes(story)
    if shutil.which("openssl"):
        ossl = d / "openssl"
        ossl.mkdir()
        subprocess.run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-in", str(src), "-out", str(ossl / "o.bin"),
                        "-pass", f"file:{secrets / 'pw'}"], check=True)
        made["openssl"] = ossl
    if shutil.which("gpg"):
        pgp = d / "openpgp"
        pgp.mkdir()
        home = d / "gnupg"
        home.mkdir(mode=0o700)
        subprocess.run(["gpg", "--homedir", str(home), "--batch", "--quiet", "--pinentry-mode", "loopback",
                        "--passphrase-file", str(secrets / "pw"), "-c", "-o", str(pgp / "g.gpg"), str(src)],
                       check=True, capture_output=True)
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)
        made["openpgp"] = pgp
    return made, secrets


def run(cpu, args, env=None):
    cmd = [binary(), "count", "--json", "--workers", "2", *args]
    if cpu is not None:
        cmd = [QEMU, "-cpu", cpu, *cmd]
    return subprocess.run(cmd, capture_output=True, timeout=600, env=env)


def same_everywhere(args):
    def result(cpu):
        r = run(cpu, args)
        return r.returncode, r.stdout

    native = result(None)
    assert native[0] in (0, 2) and native[1], native
    for cpu in MODELS:
        assert result(cpu) == native, cpu


def terms(*ts):
    return [x for t in ts for x in ("-t", t)]


PLAIN_CASES = [
    ("memchr", terms("zeppelin")),
    ("packed pair", terms("garden")),
    ("byte set / pair set", terms("zeppelin", "velocipede", "journey")),
    ("short counter", terms(*[t for t in COMMON if len(t) <= 4])),
    ("Teddy and the short counter", terms(*COMMON, *MEDIUM, *RARE, "there", "about", "would", "could")),
    ("Wu-Manber", terms(*[t for t in MEDIUM + RARE if len(t) >= 6], "morning ", "evening.")),
    ("pair bitmap, ignore_case", ["-i", *terms(*COMMON[:10], *EXTRA, "GARDEN", "σίσυφος")]),
    ("whole_word", ["-w", *terms("the", "a", "that", "then", "there", "garden", "i")]),
    ("regex", ["-e", r"\bth\w+", "-e", "(?i)gard[a-z]n", "-e", "[0-9]+|é"]),
]


@pytest.mark.parametrize("name,args", PLAIN_CASES, ids=[c[0] for c in PLAIN_CASES])
def test_plain_search_paths_agree_on_older_cpus(files, name, args):
    made, _ = files
    same_everywhere([*args, str(made["plain"])])


def test_cipher_paths_agree_on_older_cpus(files):
    made, secrets = files
    words = terms("the", "garden", "zeppelin", "Café", "there")
    same_everywhere(["--cipher", "biographer", "--secret-file", str(secrets / "bio"), *words, str(made["bio"])])
    same_everywhere(["--cipher", "fernet", "--secret-file", str(secrets / "fernet"), *words, str(made["fernet"])])
    same_everywhere(["--cipher", "age", "--secret-file", str(secrets / "age"), *words, str(made["age"])])
    for cipher in ("openssl", "openpgp"):
        if cipher in made:
            same_everywhere(["--cipher", cipher, "--secret-file", str(secrets / "pw"), *words, str(made[cipher])])


def test_biographer_kernels_are_refused_where_the_cpu_lacks_them(files):
    """Forcing a kernel the emulated CPU lacks is a start-up error, not an illegal instruction."""
    made, secrets = files
    env = {**os.environ, "CRYPTCOUNT_KERNEL": "avx2"}
    r = run("qemu64", ["--cipher", "biographer", "--secret-file", str(secrets / "bio"), "-t", "a", str(made["bio"])],
            env=env)
    assert r.returncode == 1 and r.stdout == b"" and b"avx2" in r.stderr, r

