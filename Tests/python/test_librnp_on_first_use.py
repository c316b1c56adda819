"""librnp is loaded on first use (issue 14, target 7): Sources/CLibRNPLoader defines the rnp_*
functions and dlopens librnp the first time the openpgp cipher calls one, and the Makefile's
builds link librnp AS_NEEDED (a copy of its .pc file, see the Makefile), so the executable does
not depend on it: a run without OpenPGP does not pay for loading librnp and Botan. glibc's own
trace (LD_DEBUG=files) says which shared objects a run really opened.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

BIN = os.environ.get("CRYPTCOUNT_BIN", "cryptcount")
GPG = shutil.which("gpg")
TEXT = b"the rain in spain\nstays mainly in the plain\nthe end\n"


def traced(args, **kw):
    env = dict(os.environ, LD_DEBUG="files")
    return subprocess.run([BIN, *args], capture_output=True, env=env, timeout=120, **kw)


def loaded(stderr: bytes, name: str) -> bool:
    return any(b"file=" in line and name.encode() in line for line in stderr.splitlines())


def needed(path: str) -> list[str]:
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "(NEEDED)" in line]


def test_the_executable_does_not_depend_on_librnp():
    deps = needed(shutil.which(BIN) or BIN)
    assert deps, "readelf found no NEEDED entry at all"  # the check below can fail
    bad = [line for line in deps if "librnp" in line or "botan" in line]
    assert not bad, f"{bad}: build with make (its librnp.pc copy links librnp AS_NEEDED)"


def test_plain_count_does_not_load_librnp(tmp_path: Path):
    f = tmp_path / "story.txt"
    f.write_bytes(TEXT)
    r = traced(["count", "--json", "-t", "the", str(f)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert b'"counts":[3]' in r.stdout.replace(b" ", b""), r.stdout
    assert loaded(r.stderr, "libc.so"), r.stderr[-2000:]  # the trace works
    assert not loaded(r.stderr, "librnp"), [l for l in r.stderr.splitlines() if b"librnp" in l]
    assert not loaded(r.stderr, "botan")


def make_gpg_message(tmp_path: Path) -> bytes:
    """A cv25519 key (exported with its passphrase) and a message to it, made by gpg."""
    root = Path(tempfile.mkdtemp(prefix="ccst", dir="/tmp"))  # short: gpg-agent's socket
    home = root / "g"
    home.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    gpg = [GPG, "--batch", "--yes", "--no-tty", "--quiet", "--trust-model", "always"]
    pw = b"startup test passphrase\n"
    loop = ["--pinentry-mode", "loopback", "--passphrase-fd", "0"]
    try:

        def run(*a, inp=None):
            return subprocess.run(gpg + list(a), input=inp, env=env, capture_output=True, check=True, timeout=300).stdout

        run(*loop, "--quick-gen-key", "Ann <ann@example.org>", "future-default", "default", "never", inp=pw)
        (tmp_path / "keys.asc").write_bytes(run(*loop, "--armor", "--export-secret-keys", "ann@example.org", inp=pw))
        (tmp_path / "plain.txt").write_bytes(TEXT)
        run("--encrypt", "-r", "ann@example.org", "-o", str(tmp_path / "story.gpg"), str(tmp_path / "plain.txt"))
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    (tmp_path / "pw").write_bytes(pw)
    return pw


@pytest.mark.skipif(GPG is None, reason="gpg is not installed (apt install gnupg)")
def test_openpgp_loads_librnp_on_first_use(tmp_path: Path):
    make_gpg_message(tmp_path)
    r = traced([
        "count", "--json", "--cipher", "openpgp", "--keys-file", str(tmp_path / "keys.asc"),
        "--secret-file", str(tmp_path / "pw"), "-t", "the", "-t", "rain", str(tmp_path / "story.gpg"),
    ])  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert b'"counts":[3,1]' in r.stdout.replace(b" ", b""), r.stdout
    assert loaded(r.stderr, "librnp"), r.stderr[-2000:]


def test_without_librnp_openpgp_fails_with_a_reason_and_the_rest_works(tmp_path: Path):
    """librnp hidden (/dev/null bound over it in a private mount namespace): the executable
    still starts and counts plain files; the openpgp cipher says librnp cannot be loaded."""
    system = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    found = re.search(r"librnp\.so\.0 .*=> (\S+)", system)
    if found is None or shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs the system's librnp, unshare and root (a private mount namespace)")
    real = os.path.realpath(found.group(1))
    hide = ["unshare", "-m", "sh", "-c", f'mount --bind /dev/null "{real}" && exec "$@"', "sh"]
    (tmp_path / "plain.txt").write_bytes(TEXT)
    (tmp_path / "story.gpg").write_bytes(b"\x8c\x0d\x04\x09\x03\x02" + bytes(40))  # any bytes
    (tmp_path / "pw").write_bytes(b"pw\n")
    r = subprocess.run([*hide, BIN, "count", "-t", "the", str(tmp_path / "plain.txt")], capture_output=True)
    assert r.returncode == 0 and b"TOTAL" in r.stdout, r
    r = subprocess.run(
        [*hide, BIN, "count", "--cipher", "openpgp", "--keys-file", str(tmp_path / "pw"),
         "--secret-file", str(tmp_path / "pw"), "-t", "the", str(tmp_path / "story.gpg")],
        capture_output=True,
    )  # fmt: skip
    assert r.returncode == 1, r
    assert b"cannot load librnp" in r.stderr, r.stderr
