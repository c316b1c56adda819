"""End-to-end test of coproc-search.sh against the built binary ($CRYPTCOUNT_BIN or .build/debug/cryptcount)."""

import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile

import msgpack
import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "coproc-search.sh"
BINARY = pathlib.Path(os.environ.get("CRYPTCOUNT_BIN") or ROOT / ".build" / "debug" / "cryptcount")

pytestmark = pytest.mark.skipif(not BINARY.exists(), reason=f"{BINARY} not built (swift build)")


def run(args, stdin, cwd):
    # The script runs "$CRYPTCOUNT serve" in its pipeline; a wrapper tees what serve writes, so
    # every response of the session is checked against protocol/schema.json as well.
    tapdir = pathlib.Path(tempfile.mkdtemp(prefix="cryptcount-tap-"))
    tap = tapdir / "responses"
    wrapper = tapdir / "cryptcount"
    wrapper.write_text(
        "#!/usr/bin/env bash\nset -o pipefail\n"
        f'if [ "$1" = serve ]; then "{BINARY}" "$@" | tee -a "{tap}"; exit; fi\n'
        f'exec "{BINARY}" "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "CRYPTCOUNT": str(wrapper)}
    try:
        r = subprocess.run(["bash", str(SCRIPT), *args], input=stdin, capture_output=True, cwd=cwd, env=env,
                           timeout=60)
        check_responses(tap.read_bytes() if tap.exists() else b"")
    finally:
        shutil.rmtree(tapdir, ignore_errors=True)
    return r


def check_responses(data):
    """Every frame serve wrote is one response valid under protocol/schema.json."""
    sys.path.insert(0, str(ROOT / "Tests" / "Golden"))
    from schema_check import check_response

    pos = 0
    while pos < len(data):
        assert pos + 4 <= len(data), "serve's output ended inside a frame header"
        (n,) = struct.unpack_from(">I", data, pos)
        assert pos + 4 + n <= len(data), "serve's output ended inside a frame"
        check_response(msgpack.unpackb(data[pos + 4:pos + 4 + n], raw=False, unicode_errors="surrogateescape"))
        pos += 4 + n


@pytest.fixture
def diary(tmp_path):
    (tmp_path / "pw").write_bytes(b"hunter2\n")
    (tmp_path / "day1.txt").write_bytes(b"Dear diary, the cat sat on the mat.\n")
    (tmp_path / "day2.txt").write_bytes(b"The cat is back. Cat food is expensive.\n")
    for day in ("day1", "day2"):
        subprocess.run([str(BINARY), "encrypt", "--cipher", "biographer", "--secret-file", "pw",
                        f"{day}.txt", f"{day}.bio"], cwd=tmp_path, check=True)
    shutil.copy(tmp_path / "day1.bio", tmp_path / os.fsdecode(b"d\xff.bio"))
    return tmp_path


def test_search_session(diary):
    r = run(["-c", "biographer", "-k", "pw", "day1.bio", "day2.bio"], b"cat\nmat\n\ndog", diary)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        "cat\tday1.bio\t1", "cat\tday2.bio\t1", "cat\tTOTAL\t2",
        "mat\tday1.bio\t1", "mat\tTOTAL\t1",
        "dog\tTOTAL\t0",
    ]


def test_odd_names_terms_and_bad_files(diary):
    odd = b"d\xff.bio"
    r = run(["-c", "biographer", "-k", "pw", "day1.bio", os.fsdecode(odd), "missing.bio", "day1.txt"],
            b'"the cat\n\\\n', diary)
    assert r.returncode == 1, r.stderr  # two files could not be read
    assert r.stdout.split(b"\n") == [
        b'"the cat\tTOTAL\t0', b"\\\tTOTAL\t0", b"",
    ]
    r = run(["-c", "biographer", "-k", "pw", "day1.bio", os.fsdecode(odd), "missing.bio", "day1.txt"], b"cat\n", diary)
    assert r.stdout.split(b"\n") == [b"cat\tday1.bio\t1", b"cat\t" + odd + b"\t1", b"cat\tTOTAL\t2", b""]
    assert b"missing.bio: not_found" in r.stderr
    assert b"day1.txt: bad_format" in r.stderr
    assert r.returncode == 1


def test_exit_status_missing_secret_file_and_crlf_terms(diary):
    """0 when every file was read, 1 when one was not (as pass-grep.sh), 2 with one clear message
    for a secret file that cannot be read; terms from a CRLF file are found."""
    r = run(["-c", "biographer", "-k", "pw", "day1.bio", "day2.bio"], b"cat\r\nmat\r\n", diary)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        "cat\tday1.bio\t1", "cat\tday2.bio\t1", "cat\tTOTAL\t2", "mat\tday1.bio\t1", "mat\tTOTAL\t1"]
    (diary / "wrong").write_bytes(b"not the password\n")
    r = run(["-c", "biographer", "-k", "wrong", "day1.bio"], b"cat\n", diary)
    assert r.returncode == 1 and b"day1.bio: decrypt_failed" in r.stderr
    for missing in ("nokey", "."):
        r = run(["-c", "biographer", "-k", missing, "day1.bio"], b"cat\n", diary)
        assert r.returncode == 2
        assert r.stderr.decode().strip().splitlines() == [f"coproc-search.sh: cannot read the secret file {missing}"]


def test_plain_files(diary):
    r = run(["day1.txt", "day2.txt"], b"the\n", diary)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["the\tday1.txt\t2", "the\tTOTAL\t2"]


def test_errors(diary):
    r = run(["-c", "biographer", "day1.bio"], b"cat\n", diary)
    assert r.returncode == 2 and b"needs -k" in r.stderr
    r = run(["-c", "rot13", "-k", "pw", "day1.bio"], b"cat\n", diary)
    assert r.returncode == 1 and b"unknown_cipher" in r.stderr
    assert b"hunter2" not in r.stderr
    r = run([], b"", diary)
    assert r.returncode == 2 and b"usage" in r.stderr


def test_ignore_case_and_whole_word(diary):
    r = run(["-i", "-c", "biographer", "-k", "pw", "day1.bio", "day2.bio"], b"cat\n", diary)
    assert r.stdout.decode().splitlines() == ["cat\tday1.bio\t1", "cat\tday2.bio\t2", "cat\tTOTAL\t3"]
    r = run(["-w", "day1.txt"], b"at\nsat\n", diary)
    assert r.stdout.decode().splitlines() == ["at\tTOTAL\t0", "sat\tday1.txt\t1", "sat\tTOTAL\t1"]


@pytest.mark.parametrize("content", [b"hunter2\r\n", b"hunter2\n\n", b"hunter2\r", b"hunter2"])
def test_secret_file_rule_matches_encrypt(tmp_path, content):
    # One rule everywhere: less exactly one trailing \n or \r\n. A file encrypted with a secret
    # file is searched with that same file, and the other spellings are different secrets.
    (tmp_path / "key").write_bytes(content)
    (tmp_path / "day.txt").write_bytes(b"the cat sat on the cat mat\n")
    subprocess.run([str(BINARY), "encrypt", "--cipher", "biographer", "--secret-file", "key", "day.txt", "day.bio"],
                   cwd=tmp_path, check=True)
    r = run(["-c", "biographer", "-k", "key", "day.bio"], b"cat\n", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["cat\tday.bio\t2", "cat\tTOTAL\t2"]
    stripped = content[:-2] if content.endswith(b"\r\n") else content[:-1] if content.endswith(b"\n") else content
    (tmp_path / "other").write_bytes(stripped + b"x\n")
    r = run(["-c", "biographer", "-k", "other", "day.bio"], b"cat\n", tmp_path)
    assert r.stdout.decode().splitlines()[-1] != "cat\tTOTAL\t2"


def test_regular_expressions(diary):
    # day1: "cat sat mat" -> [cms]at 3; day2: "cat", "Cat" -> 1 (2 with -i).
    r = run(["-e", "-c", "biographer", "-k", "pw", "day1.bio", "day2.bio"], b"[cms]at\\b\nx(\na*\n\\w+y\n", diary)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        "[cms]at\\b\tday1.bio\t3", "[cms]at\\b\tday2.bio\t1", "[cms]at\\b\tTOTAL\t4",
        "\\w+y\tday1.bio\t1", "\\w+y\tTOTAL\t1",
    ]
    assert b"pattern 'x(': bad_request" in r.stderr and b"pattern 'a*': bad_request" in r.stderr
    r = run(["-e", "-i", "day2.txt"], b"cat\\b\n", diary)
    assert r.stdout.decode().splitlines() == ["cat\\b\tday2.txt\t2", "cat\\b\tTOTAL\t2"]


def test_a_refused_term_is_reported_and_skipped(diary):
    # A term over the server's --max-term-bytes (4096) is the user's, as a bad pattern is.
    r = run(["day2.txt"], b"x" * 5000 + b"\ncat\n", diary)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["cat\tday2.txt\t1", "cat\tTOTAL\t1"]
    assert b"term 'xxxx" in r.stderr and b"bad_request" in r.stderr


def test_auto_sniffs_each_file(tmp_path):
    """-c auto (README: any cipher hello lists, as `cryptcount count --cipher auto`): an age file,
    a Fernet file and a plain file in one search; the secret fits the age file only."""
    from cryptography.fernet import Fernet

    if shutil.which("age-keygen") is None:
        pytest.skip("age is not installed")
    text = b"the rain came, rain again\n"
    (tmp_path / "plain.txt").write_bytes(text)
    subprocess.run(["age-keygen", "-o", "id.txt"], cwd=tmp_path, check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", "id.txt"], cwd=tmp_path, check=True,
                               capture_output=True).stdout.strip().decode()
    subprocess.run(["age", "-r", recipient, "-o", "a.age", "plain.txt"], cwd=tmp_path, check=True)
    (tmp_path / "t.fernet").write_bytes(Fernet(Fernet.generate_key()).encrypt(text))
    r = run(["-c", "auto", "-k", "id.txt", "a.age", "t.fernet", "plain.txt"], b"rain\n", tmp_path)
    assert r.returncode == 1, r.stderr  # t.fernet could not be read
    assert r.stdout.decode().splitlines() == ["rain\ta.age\t2", "rain\tplain.txt\t2", "rain\tTOTAL\t4"]
    assert r.stderr.decode() == "t.fernet: decrypt_failed: the file looks like fernet, but no fernet key was given\n"
    assert b"AGE-SECRET-KEY" not in r.stderr
    r = run(["-c", "auto", "a.age", "plain.txt"], b"rain\n", tmp_path)  # no secret: plain files only
    assert r.returncode == 1, r.stderr
    assert r.stdout.decode().splitlines() == ["rain\tplain.txt\t2", "rain\tTOTAL\t2"]
    assert b"a.age: decrypt_failed" in r.stderr


def test_age_passphrase_and_openpgp_key_files(tmp_path):
    """-k takes a secret file as `cryptcount count --secret-file` does: for age, identity text or
    else a passphrase (scrypt); for openpgp, a PGP PRIVATE KEY BLOCK or else a passphrase; with
    -c age, and with -c auto."""
    pyrage = pytest.importorskip("pyrage")
    text = b"the sun, the sun again\n"
    (tmp_path / "p.age").write_bytes(pyrage.passphrase.encrypt(text, "sun and moon"))
    (tmp_path / "age.pw").write_bytes(b"sun and moon\n")
    for cipher in ("age", "auto"):
        r = run(["-c", cipher, "-k", "age.pw", "p.age"], b"sun\n", tmp_path)
        assert r.returncode == 0, (cipher, r.stderr)
        assert r.stdout.decode().splitlines() == ["sun\tp.age\t2", "sun\tTOTAL\t2"], cipher
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    home = tmp_path / "g"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--yes", "--no-tty", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "Sun <sun@example.org>", "future-default", "default", "never"],
                   env=env, check=True, capture_output=True)
    (tmp_path / "keys.asc").write_bytes(
        subprocess.run([*gpg, "--armor", "--export-secret-keys"], env=env, check=True, capture_output=True).stdout)
    (tmp_path / "plain.txt").write_bytes(text)
    subprocess.run([*gpg, "--trust-model", "always", "-r", "sun@example.org", "-e", "-o", "m.gpg", "plain.txt"],
                   cwd=tmp_path, env=env, check=True, capture_output=True)
    subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True)
    for cipher in ("openpgp", "auto"):
        r = run(["-c", cipher, "-k", "keys.asc", "m.gpg"], b"sun\n", tmp_path)
        assert r.returncode == 0, (cipher, r.stderr)
        assert r.stdout.decode().splitlines() == ["sun\tm.gpg\t2", "sun\tTOTAL\t2"], cipher
