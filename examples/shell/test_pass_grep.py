"""End-to-end test of pass-grep.sh: a pass-layout store made by real gpg, one coprocess."""

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "pass-grep.sh"
BINARY = pathlib.Path(os.environ.get("CRYPTCOUNT_BIN") or ROOT / ".build" / "debug" / "cryptcount")
GPG = shutil.which("gpg")

pytestmark = [
    pytest.mark.skipif(not BINARY.exists(), reason=f"{BINARY} not built (swift build)"),
    pytest.mark.skipif(GPG is None, reason="gpg is not installed (apt install gnupg)"),
]

PW = "store passphrase"
ENTRIES = {
    "email/work": b"hunter2\nlogin: alice\nthe mail server\n",
    "email/home": b"correct horse\n",
    "bank": b"pin 1234\nthe bank, the branch\n",
}


@pytest.fixture
def store():
    root = pathlib.Path(tempfile.mkdtemp(prefix="ccpass", dir="/tmp"))
    home = root / "g"
    home.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(home))

    def gpg(*args, pw=None):
        cmd = [GPG, "--batch", "--yes", "--quiet", "--trust-model", "always"]
        if pw:
            cmd += ["--pinentry-mode", "loopback", "--passphrase-fd", "0"]
        return subprocess.run(cmd + list(args), input=(pw + "\n").encode() if pw else None, env=env,
                              capture_output=True, check=True, timeout=120).stdout

    try:
        gpg("--quick-gen-key", "Pass <pass@example.org>", "future-default", "default", "never", pw=PW)
        (root / "keys.asc").write_bytes(gpg("--armor", "--export-secret-keys", "pass@example.org", pw=PW))
        (root / "pw").write_text(PW + "\n")
        s = root / "password-store"
        (s / "email").mkdir(parents=True)
        (s / ".gpg-id").write_text("pass@example.org\n")
        for name, text in ENTRIES.items():
            (root / "e.txt").write_bytes(text)
            gpg("-o", str(s / f"{name}.gpg"), "--compress-algo=none", "--no-encrypt-to",
                "-r", "pass@example.org", "-e", str(root / "e.txt"))
        (root / "e.txt").unlink()
        (s / "broken.gpg").write_bytes(b"not openpgp at all\n")
        yield root, s, home
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def run(*args):
    env = {**os.environ, "CRYPTCOUNT": str(BINARY)}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_pass_grep_with_exported_keys(store):
    root, s, _ = store
    r = run("-s", str(s), "-K", str(root / "keys.asc"), "-p", str(root / "pw"), "the", "hunter2")
    assert r.stdout.decode().splitlines() == [
        "bank\t2\t0",
        "email/work\t1\t1",
        "TOTAL\t3\t1",
    ]
    assert b"broken: bad_format" in r.stderr
    assert PW.encode() not in r.stderr and r.returncode == 1


def test_pass_grep_wrong_passphrase(store):
    root, s, _ = store
    (root / "bad").write_text("nope\n")
    r = run("-s", str(s), "-K", str(root / "keys.asc"), "-p", str(root / "bad"), "the")
    assert r.returncode == 1 and b"unlock failed: bad_secret" in r.stderr


def test_pass_grep_with_gnupg_home(store):
    root, s, home = store
    r = run("-s", str(s), "-g", str(home), "-p", str(root / "pw"), "-i", "THE")
    assert r.stdout.decode().splitlines() == ["bank\t2", "email/work\t1", "TOTAL\t3"], r.stderr.decode()


def test_pass_grep_names_entries_as_pass_does(store):
    """Entries are named relative to the store however its path is written (a trailing /), and
    sorted by that name, byte by byte (a, a-b, a/b; not by file name, where a-b.gpg sorts first)."""
    root, s, _ = store
    (s / "a").mkdir()
    for name in ("a", "a-b", "a/b"):
        shutil.copy(s / "bank.gpg", s / f"{name}.gpg")
    want = ["a\t2", "a-b\t2", "a/b\t2", "bank\t2", "email/work\t1", "TOTAL\t9"]
    for store_arg in (str(s), str(s) + "/", str(s) + "//"):
        r = run("-s", store_arg, "-K", str(root / "keys.asc"), "-p", str(root / "pw"), "the")
        assert r.stdout.decode().splitlines() == want, store_arg


def test_pass_grep_follows_a_symlinked_store_and_a_crlf_passphrase_file(store):
    """A store reached through a symbolic link (and links inside it) is searched, as `pass`
    searches it (find -L); a passphrase file ending in \\r\\n loses both bytes, the secret-file
    rule of `cryptcount count`."""
    root, s, _ = store
    (root / "link").symlink_to(s)
    (root / "pw-crlf").write_bytes(PW.encode() + b"\r\n")
    r = run("-s", str(root / "link"), "-K", str(root / "keys.asc"), "-p", str(root / "pw-crlf"), "the")
    assert r.stdout.decode().splitlines() == ["bank\t2", "email/work\t1", "TOTAL\t3"], r.stderr
    outside = root / "outside"
    outside.mkdir()
    shutil.copy(s / "bank.gpg", outside / "vault.gpg")
    (s / "shared").symlink_to(outside)
    r = run("-s", str(s), "-K", str(root / "keys.asc"), "-p", str(root / "pw"), "the")
    assert r.stdout.decode().splitlines() == ["bank\t2", "email/work\t1", "shared/vault\t2", "TOTAL\t5"]
