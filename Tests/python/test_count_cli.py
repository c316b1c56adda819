"""`cryptcount count`, what a new user runs into (issue 11, "Trust"): the secret-file rule shared
with `encrypt`, symlinks and unreadable directories, exit statuses, the table with no terms,
escaped names, lossless names in --json, ignore_case on caseless terms. Real binary, real files
(Fernet files made by python cryptography)."""

import base64
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from cryptography.fernet import Fernet

from cc_harness import Serve, binary, check_count_done

TEXT = b"the cat sat on the cat mat\n"


def run(*args, cwd=None, env=None, stdin=b""):
    return subprocess.run([binary(), "count", *args], input=stdin, capture_output=True, cwd=cwd, env=env,
                          timeout=60)


def rows(stdout: bytes):
    return [line.split() for line in stdout.decode().splitlines()]


# -- the secret-file rule ------------------------------------------------------------------------

ENDINGS = [b"\n", b"\r\n", b"\n\n", b"\r\n\r\n", b"", b"\r"]


def strip_one(content: bytes) -> bytes:
    if content.endswith(b"\r\n"):
        return content[:-2]
    return content[:-1] if content.endswith(b"\n") else content


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_file_encrypted_with_a_secret_file_counts_with_it(tmp_path, ending):
    (tmp_path / "pw").write_bytes(b"hunter2" + ending)
    (tmp_path / "day.txt").write_bytes(TEXT)
    subprocess.run([binary(), "encrypt", "--cipher", "biographer", "--secret-file", "pw", "day.txt", "day.bio"],
                   cwd=tmp_path, check=True)
    r = run("--cipher", "biographer", "--secret-file", "pw", "-t", "cat", "--json", "day.bio", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == [2]
    # Exactly one line ending goes: the secret is the rest, as the same bytes given by stdin or
    # by an environment variable (taken as is) show.
    secret = strip_one(b"hunter2" + ending)
    r = run("--cipher", "biographer", "--secret-file", "-", "-t", "cat", "--json", "day.bio", cwd=tmp_path,
            stdin=secret + b"\r\n")  # (S + "\n" would be "hunter2\r\n" for S = "hunter2\r")
    assert json.loads(r.stdout)["counts"] == [2], r.stderr
    if b"\n" not in secret and b"\r" not in secret:
        env = {**os.environ, "CC_TEST_PW": secret.decode()}
        r = run("--cipher", "biographer", "--secret-env", "CC_TEST_PW", "-t", "cat", "--json", "day.bio",
                cwd=tmp_path, env=env)
        assert json.loads(r.stdout)["counts"] == [2], r.stderr
    assert b"hunter2" not in r.stdout + r.stderr


def test_only_one_line_ending_is_stripped(tmp_path):
    (tmp_path / "pw2").write_bytes(b"hunter2\n\n")  # the secret "hunter2\n"
    (tmp_path / "pw1").write_bytes(b"hunter2\n")  # the secret "hunter2"
    (tmp_path / "day.txt").write_bytes(TEXT * 3)
    subprocess.run([binary(), "encrypt", "--cipher", "biographer", "--secret-file", "pw2", "day.txt", "day.bio"],
                   cwd=tmp_path, check=True)
    good = run("--cipher", "biographer", "--secret-file", "pw2", "-t", "the cat", "--json", "day.bio", cwd=tmp_path)
    assert json.loads(good.stdout)["counts"] == [6]
    bad = run("--cipher", "biographer", "--secret-file", "pw1", "-t", "the cat", "--json", "day.bio", cwd=tmp_path)
    assert json.loads(bad.stdout).get("counts") != [6]


@pytest.mark.parametrize("ending", [b"\r\n", b"\n", b""])
def test_fernet_key_file_with_any_line_ending(tmp_path, ending):
    key = Fernet.generate_key()
    (tmp_path / "key").write_bytes(key + ending)
    (tmp_path / "f.fernet").write_bytes(Fernet(key).encrypt(TEXT))
    r = run("--cipher", "fernet", "--secret-file", "key", "-t", "cat", "--json", "f.fernet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == [2]


# -- symlinks and unreadable directories -----------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_bytes(b"cat\n")
    (d / "sub" / "b.txt").write_bytes(b"cat cat\n")
    os.symlink("..", d / "sub" / "up")  # a loop with -L
    os.symlink("a.txt", d / "alink")  # a link to a file: counted
    other = tmp_path / "other"
    other.mkdir()
    (other / "c.txt").write_bytes(b"cat cat cat\n")
    os.symlink("../other", d / "olink")  # a link to a directory: walked only with -L
    os.symlink("d", tmp_path / "top")  # a link to a directory named on the command line
    return tmp_path


def test_symlinked_directories(tree):
    r = run("-t", "cat", "top", cwd=tree)
    assert r.returncode == 0, r.stderr
    assert rows(r.stdout) == [["path", "cat"], ["top/a.txt", "1"], ["top/alink", "1"], ["top/sub/b.txt", "2"],
                              ["TOTAL", "4"]]
    assert r.stderr == b""
    r = run("-L", "-t", "cat", "top", cwd=tree)
    assert r.returncode == 0, r.stderr  # the loop is not a failed file
    assert rows(r.stdout) == [["path", "cat"], ["top/a.txt", "1"], ["top/alink", "1"], ["top/olink/c.txt", "3"],
                              ["top/sub/b.txt", "2"], ["TOTAL", "7"]]
    assert b"top/sub/up: a link to a directory being walked, not followed" in r.stderr
    r = run("--follow", "--json", "-t", "cat", "top", cwd=tree)
    assert [json.loads(line)["path"] for line in r.stdout.splitlines()] == [
        "top/a.txt", "top/alink", "top/olink/c.txt", "top/sub/b.txt"]


def test_hidden_files_and_ignore_files_are_walked(tmp_path):
    """README: every file is counted, hidden ones included, and no ignore file is read (rg skips
    both); names sorted byte-wise."""
    top = tmp_path / "top"
    (top / ".hid").mkdir(parents=True)
    (top / ".h.txt").write_bytes(b"cat\n")
    (top / ".hid" / "x.txt").write_bytes(b"cat cat\n")
    (top / "a.txt").write_bytes(b"cat\n")
    (top / ".gitignore").write_bytes(b"a.txt\n")
    (top / ".ignore").write_bytes(b"*.txt\n")
    r = run("--json", "-t", "cat", "top", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = [(o["path"], o["counts"]) for o in map(json.loads, r.stdout.splitlines())]
    assert got == [("top/.gitignore", [0]), ("top/.h.txt", [1]), ("top/.hid/x.txt", [2]), ("top/.ignore", [0]),
                   ("top/a.txt", [1])]


def as_nobody():
    """argv prefix that runs a command as an unprivileged user (root reads any directory)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory unreadable")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_unreadable_directory_is_permission_denied():
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="cc-perm-"))  # pytest's own is 0700
    os.chmod(tmp_path, 0o755)
    (tmp_path / "ok.txt").write_bytes(b"cat\n")
    (tmp_path / "ok.txt").chmod(0o644)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x.txt").write_bytes(b"cat\n")
    locked.chmod(0)
    b = tmp_path / "cc"
    shutil.copy(binary(), b)  # reachable by the unprivileged user
    b.chmod(0o755)
    try:
        for target in ([str(tmp_path)], [str(locked)]):
            r = subprocess.run([*as_nobody(), str(b), "count", "--json", "-t", "cat", *target], capture_output=True,
                               timeout=60)
            assert r.returncode == 2, r.stderr
            lines = [json.loads(line) for line in r.stdout.splitlines()]
            failed = [x for x in lines if "error" in x]
            assert [(x["path"], x["error"]["code"]) for x in failed] == [(str(locked), "permission_denied")]
            assert f"{locked}: permission_denied".encode() in r.stderr
    finally:
        locked.chmod(0o755)
        shutil.rmtree(tmp_path)


# -- exit statuses ---------------------------------------------------------------------------------


def test_exit_statuses(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"cat\n")
    (tmp_path / "pw").write_bytes(b"pw\n")
    ok = run("-t", "cat", "a.txt", cwd=tmp_path)
    assert ok.returncode == 0
    assert run("-t", "cat", "a.txt", "missing.txt", cwd=tmp_path).returncode == 2
    usage = [
        ["--bogus", "a.txt"],
        ["-t", "cat"],  # no path
        ["-t", "", "a.txt"],
        ["--workers", "0", "a.txt"],
        ["--secret-file", "pw", "--secret-env", "HOME", "a.txt"],
        ["--cipher", "rot13", "a.txt"],
        ["--cipher", "fernet", "a.txt"],  # needs a secret
    ]
    secret = [
        ["--cipher", "fernet", "--secret-file", "nonexistent", "a.txt"],
        ["--cipher", "fernet", "--secret-env", "CC_SURELY_UNSET_VARIABLE", "a.txt"],
        ["--cipher", "fernet", "--secret-file", "pw", "a.txt"],  # not a Fernet key
    ]
    for args in usage + secret:
        r = run(*args, cwd=tmp_path)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert r.stderr.strip(), args
        assert r.stdout == b"", args
    assert run("--help").returncode == 0
    # The help says so.
    helptext = run("--help").stdout.decode()
    for promise in ("0 when every file was processed", "2 when any failed", "1 on a usage or secret error",
                    "130 in a shell"):
        assert promise in " ".join(helptext.split()), promise


def test_interrupted_ends_by_sigint(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"cat\n")
    # --secret-file - blocks on stdin: a deterministic place to be interrupted.
    p = subprocess.Popen([binary(), "count", "--cipher", "fernet", "--secret-file", "-", "a.txt"], cwd=tmp_path,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        exe = os.path.realpath(binary())
        while True:  # until the binary runs (not the forked child before exec) with its handler
            with open(f"/proc/{p.pid}/status") as f:
                caught = int(next(line for line in f if line.startswith("SigCgt:")).split()[1], 16)
            if os.path.realpath(f"/proc/{p.pid}/exe") == exe and caught & (1 << (signal.SIGINT - 1)):
                break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=20)
        assert p.returncode == -signal.SIGINT
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    # What a shell reports for it.
    # stdin from a pipe nobody writes (a background job's stdin would be /dev/null); SIGINT once
    # the binary runs (not the forked shell) with its handler installed.
    script = (
        '"$0" count --cipher fernet --secret-file - a.txt < <(sleep 30 2>/dev/null) & pid=$!; exe=$(realpath "$0"); '
        'for i in $(seq 400); do [[ $(readlink /proc/$pid/exe) == "$exe" ]] && '
        'grep -q "^SigCgt:.*[2367abef]$" /proc/$pid/status && break; sleep 0.05; done; '
        'kill -INT $pid; wait $pid; echo "status=$?"'
    )
    r = subprocess.run(["bash", "-c", script, binary()], cwd=tmp_path, capture_output=True, timeout=60)
    assert r.stdout.decode().strip().endswith("status=130"), r


# -- the table and --json ------------------------------------------------------------------------


def test_table_without_terms_shows_bytes_and_total(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"one two three\n")
    (tmp_path / "b.txt").write_bytes(b"four\n")
    r = run("a.txt", "b.txt", cwd=tmp_path)
    assert r.returncode == 0
    assert rows(r.stdout) == [["path", "bytes"], ["a.txt", "14"], ["b.txt", "5"], ["TOTAL", "19"]]
    r = run("--words", "a.txt", "b.txt", "missing", cwd=tmp_path)
    assert r.returncode == 2
    assert rows(r.stdout) == [["path", "bytes", "words"], ["a.txt", "14", "3"], ["b.txt", "5", "1"],
                              ["missing", "-", "-", "(not_found)"], ["TOTAL", "19", "4"]]
    # With terms: one column per term, as before.
    assert rows(run("-t", "o", "a.txt", cwd=tmp_path).stdout) == [["path", "o"], ["a.txt", "2"], ["TOTAL", "2"]]


def test_odd_names_escaped_in_table_lossless_in_json(tmp_path):
    names = [b"new\nline.txt", b"tab\there.txt", b"bad\xffbyte.txt", b"back\\slash.txt", b"esc\x1b.txt",
             "caf\u00e9.txt".encode()]
    for i, n in enumerate(names):
        (tmp_path / os.fsdecode(n)).write_bytes(b"x" * (i + 1))
    r = run(str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == len(names) + 2  # no name split a row
    table = {line.split()[0].rsplit("/", 1)[-1]: line.split()[1] for line in lines[1:-1]}
    assert table == {
        "new\\nline.txt": "1", "tab\\there.txt": "2", "bad\\xFFbyte.txt": "3", "back\\\\slash.txt": "4",
        "esc\\x1B.txt": "5", "caf\u00e9.txt": "6",
    }
    r = run("--json", str(tmp_path), cwd=tmp_path)
    got = {}
    for line in r.stdout.splitlines():
        obj = json.loads(line)
        path = obj["path"]
        raw = base64.b64decode(path["$bin"]) if isinstance(path, dict) else path.encode()
        got[raw.rsplit(b"/", 1)[-1]] = obj["bytes"]
    assert got == {n: i + 1 for i, n in enumerate(names)}
    assert b'"path":{"$bin":' in r.stdout  # only the name that is not UTF-8
    assert r.stdout.count(b"$bin") == 1
    # A non-UTF-8 name given on the command line is opened by its own bytes.
    r = subprocess.run([os.fsencode(binary()), b"count", b"--json", b"bad\xffbyte.txt"], cwd=tmp_path,
                       capture_output=True, timeout=60)
    obj = json.loads(r.stdout)
    assert base64.b64decode(obj["path"]["$bin"]) == b"bad\xffbyte.txt" and obj["bytes"] == 3


# -- ignore_case never changes the count of a caseless term ----------------------------------------


def test_ignore_case_leaves_caseless_terms_alone(tmp_path):
    text = "café 123 € é É ÿ Ÿ".encode() + b"\xc3("
    (tmp_path / "t.txt").write_bytes(text)
    terms = [b"\xc3", b"\xa9", b"\xe2\x82", b"\x82\xac", b"123", "€".encode(), b"\xc3(", b" "]
    with Serve() as s:
        for ignore_case in (False, True):
            responses = s.request({"id": 1, "op": "count", "files": [str(tmp_path / "t.txt")], "terms": terms,
                                   "ignore_case": ignore_case})
            check_count_done(responses, 1, 1)
            assert responses[0]["counts"] == [text.count(t) for t in terms], ignore_case
        responses = s.request({"id": 2, "op": "count", "files": [str(tmp_path / "t.txt")], "terms": ["é", "ÿ"],
                               "ignore_case": True})
        assert responses[0]["counts"] == [3, 2]  # cased terms still fold
        # Letters fold, a byte that is not UTF-8 matches itself, inside a character too.
        for ignore_case, want in ((False, [1, 0]), (True, [1, 1])):
            responses = s.request({"id": 3, "op": "count", "files": [str(tmp_path / "t.txt")],
                                   "terms": [b"f\xc3", b"F\xc3"], "ignore_case": ignore_case})
            assert responses[0]["counts"] == want, ignore_case


@pytest.mark.parametrize("extra", [[], ["--cipher", "plain"]])  # the quick parser, and swift-argument-parser
def test_terms_are_counted_by_their_own_bytes(tmp_path, extra):
    """A -t value that is not UTF-8 is counted by the command line's bytes (as a `bin` term is),
    not as U+FFFD; `--term=V` works when V begins with a combining mark (which, with the `=`,
    makes one Character)."""
    text = b"a\xc3\xa9b\xc3 \xa9\xff a\xcc\x81 x\xe2\x80\x8dy\n"
    (tmp_path / "t.txt").write_bytes(text)
    terms = [b"\xc3", b"\xff", b"b\xc3", "\u0301".encode(), "\u200d".encode(), "é".encode()]
    args = []
    for i, t in enumerate(terms):
        args += [b"--term=" + t] if i % 2 else [b"-t", t]
    r = subprocess.run([binary().encode(), b"count", b"--json", *map(os.fsencode, extra), *args,
                        os.fsencode(tmp_path / "t.txt")], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == [text.count(t) for t in terms]


def display_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def test_table_pads_names_by_characters_and_never_cuts_them(tmp_path):
    # Characters outside the BMP are two UTF-16 units: a table padded by UTF-16 units (as
    # NSString's padding did) cut the widest such name short. CJK characters and emoji take two
    # terminal columns: padded by characters, their rows stuck out.
    names = ["a😀😀😀😀.txt", "ab.txt", "c.txt", "日本語の日記.txt", "한국어.txt", "ｆｕｌｌ.txt"]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(b"the " * (i + 1))
    r = run("-t", "the", *[str(tmp_path / n) for n in names])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    for i, name in enumerate(names):
        row = lines[1 + i]
        assert row.startswith(str(tmp_path / name) + " "), lines
        assert row.split()[-1] == str(i + 1), lines
    # The count column ends at the same terminal column in every row.
    assert len({display_width(line) for line in lines}) == 1, lines


def test_table_header_escapes_terms_as_names(tmp_path):
    (tmp_path / "t.txt").write_bytes(b"a\nb a\tb \xff\n")
    r = subprocess.run([binary().encode(), b"count", b"-t", b"a\nb", b"-t", b"a\tb", b"-t", b"\xff",
                        os.fsencode(tmp_path / "t.txt")], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 3 and lines[0].split() == ["path", "a\\nb", "a\\tb", "\\xFF"]
    assert lines[1].split()[1:] == ["1", "1", "1"]


@pytest.mark.skipif(shutil.which("gpg") is None or shutil.which("openssl") is None, reason="gpg or openssl missing")
def test_auto_with_openpgp_keys_still_uses_the_secret_for_other_formats(tmp_path):
    """--cipher auto takes the secret as a key of every format it can be one of: with
    --keys-file or --gnupg-home it is also the keys' passphrase, and still openssl's password and
    an age passphrase. Those options with another cipher are a usage error."""
    import pyrage

    pw = "sun and moon"
    (tmp_path / "pw").write_text(pw + "\n")
    text = b"the sun, the sun again\n"
    (tmp_path / "plain.txt").write_bytes(text)
    (tmp_path / "p.age").write_bytes(pyrage.passphrase.encrypt(text, pw))
    subprocess.run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "env:CC_PW", "-in", "plain.txt",
                    "-out", "o.enc"], cwd=tmp_path, env={**os.environ, "CC_PW": pw}, check=True)
    home = tmp_path / "g"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--yes", "--no-tty", "--quiet", "--pinentry-mode", "loopback", "--passphrase", pw]
    try:
        subprocess.run([*gpg, "--quick-gen-key", "Sun <sun@example.org>", "future-default", "default", "never"],
                       env=env, check=True, capture_output=True)
        (tmp_path / "keys.asc").write_bytes(subprocess.run([*gpg, "--armor", "--export-secret-keys"], env=env,
                                                           check=True, capture_output=True).stdout)
        subprocess.run([*gpg, "--trust-model", "always", "-r", "sun@example.org", "-e", "-o", "m.gpg", "plain.txt"],
                       cwd=tmp_path, env=env, check=True, capture_output=True)
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True)
    files = ["p.age", "o.enc", "m.gpg"]
    for extra in (["--keys-file", "keys.asc"], ["--gnupg-home", str(home)]):
        r = run("--cipher", "auto", "--secret-file", "pw", "--json", *extra, "-t", "sun", *files, cwd=tmp_path)
        assert r.returncode == 0, (extra, r.stderr)
        got = [json.loads(line) for line in r.stdout.decode().splitlines()]
        assert [(g["path"], g["counts"], g["cipher"]) for g in got] == [
            ("p.age", [2], "age"), ("o.enc", [2], "openssl"), ("m.gpg", [2], "openpgp")], extra
    r = run("--cipher", "openssl", "--secret-file", "pw", "--keys-file", "keys.asc", "-t", "sun", "o.enc", cwd=tmp_path)
    assert r.returncode == 1 and b"--keys-file go with --cipher openpgp or auto" in r.stderr
    r = run("--cipher", "openssl", "--secret-file", "pw", "--iter", "0", "-t", "sun", "o.enc", cwd=tmp_path)
    assert r.returncode == 1 and b"--iter must be between 1 and" in r.stderr and b"secret" not in r.stderr



# -- output that cannot be written -----------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("mode", ["table", "json", "json-many"])
def test_results_that_cannot_be_written_fail_the_run(tmp_path, mode):
    """A full disk (/dev/full: ENOSPC) loses the results: `count` says so and exits 2, as `frame`
    and `unframe` do, instead of exiting 0 with nothing written."""
    for i in range(50 if mode == "json-many" else 1):
        (tmp_path / f"day{i}.txt").write_bytes(TEXT)
    args = ["-t", "cat"] + ([] if mode == "table" else ["--json"]) + [str(tmp_path)]
    with open("/dev/full", "wb") as full:
        r = subprocess.run([binary(), "count", *args], stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.decode().strip().splitlines()[-1] == "cryptcount count: write error: No space left on device"
    r = run(*args)  # the same run with somewhere to write
    assert r.returncode == 0 and r.stdout, r.stderr


def test_a_closed_stdout_fails_the_run(tmp_path):
    (tmp_path / "day.txt").write_bytes(TEXT)
    r = subprocess.run([binary(), "count", "-t", "cat", str(tmp_path / "day.txt")], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60, pass_fds=(), close_fds=True,
                       preexec_fn=lambda: os.close(1))
    assert r.returncode == 2, r.stderr
    assert b"write error" in r.stderr
