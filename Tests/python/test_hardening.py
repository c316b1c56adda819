"""Process hardening (issue 11, part 2): `serve` is not dumpable (no core file, no ptrace and no
/proc/<pid>/mem for another process of the same user), keys and cached plaintext live in
MADV_DONTDUMP memory, and --lock-memory locks them or refuses to start, saying why.

The same-user checks run `serve` as nobody (setpriv) under a probe that is also nobody and is
its parent (so a Yama ptrace_scope of 1 does not decide the outcome); the same probe against
`serve --allow-dumps` must succeed, which shows the denials come from cryptcount."""

import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import msgpack
import pytest

from cc_harness import Serve, binary, frame, pack, status_kib

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
PASSWORD = "Hx9-hardening-passw0rd-QV27"
MARKER = b"plaintext-marker-7f3a9c-"


def as_nobody(memlock=None, core=None):
    """A preexec_fn: these limits (set while still root), then user and group nobody."""
    def pre():
        if memlock is not None:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (memlock, memlock))
        if core is not None:
            resource.setrlimit(resource.RLIMIT_CORE, (core, core))
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    return pre


@pytest.fixture(scope="module")
def shared_dir():
    """A directory nobody can read: the encrypted file, and the binary if its own path is closed."""
    d = tempfile.mkdtemp(prefix="cc-hardening-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "notes.enc")
    plain = (MARKER + b"the secret word is in here\n") * 40
    subprocess.run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "stdin", "-out", path],
                   input=PASSWORD.encode() + b"\n" + plain, check=True)
    os.chmod(path, 0o644)
    yield d
    shutil.rmtree(d)


@pytest.fixture(scope="module")
def nobody_bin(shared_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root, to run serve as nobody")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    b = binary()
    if subprocess.run(NOBODY + ["test", "-x", b]).returncode != 0:
        copy = os.path.join(shared_dir, "cryptcount")  # nobody cannot reach the build directory
        shutil.copy2(b, copy)
        os.chmod(copy, 0o755)
        b = copy
    return b


@pytest.fixture(scope="module")
def nobody_python():
    for p in (sys.executable, "/usr/bin/python3"):
        if subprocess.run(NOBODY + [p, "-c", "import ctypes"], capture_output=True).returncode == 0:
            return p
    pytest.skip("no python interpreter that nobody can run")


# Runs as nobody: starts serve (also nobody) as its child, waits for the hello answer (by then
# serve has hardened itself), tries /proc/<pid>/maps, /proc/<pid>/mem and PTRACE_ATTACH, then
# sends the given frames and returns what serve wrote. Frames come on stdin (they hold a secret).
PROBE = r"""
import ctypes, errno, json, os, struct, subprocess, sys
req = json.load(sys.stdin)
p = subprocess.Popen(req["argv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
p.stdin.write(bytes.fromhex(req["hello"])); p.stdin.flush()
n = struct.unpack(">I", p.stdout.read(4))[0]; p.stdout.read(n)
out = {"uid": os.getuid(), "serve_uid": int(open(f"/proc/{p.pid}/status").read().split("Uid:")[1].split()[0])}
def err(e): return errno.errorcode.get(e.errno, str(e.errno))
lo = None
try:
    with open(f"/proc/{p.pid}/maps") as m:
        lo = int(m.readline().split("-")[0], 16)
    out["maps"] = "ok"
except OSError as e:
    out["maps"] = err(e)
try:
    with open(f"/proc/{p.pid}/mem", "rb", 0) as mem:
        if lo is not None:
            mem.seek(lo); mem.read(16)
    out["mem"] = "ok"
except OSError as e:
    out["mem"] = err(e)
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
if libc.ptrace(16, p.pid, None, None) == 0:  # PTRACE_ATTACH
    os.waitpid(p.pid, 0)
    libc.ptrace(17, p.pid, None, None)  # PTRACE_DETACH
    out["ptrace"] = "ok"
else:
    out["ptrace"] = errno.errorcode.get(ctypes.get_errno(), "?")
for f in req["frames"]:
    p.stdin.write(bytes.fromhex(f))
p.stdin.close()
out["stdout"] = p.stdout.read().hex()
out["status"] = p.wait(30)
print(json.dumps(out))
"""


def probe(py, argv, frames=()):
    req = {"argv": argv, "hello": frame(pack({"id": "h", "op": "hello"})).hex(),
           "frames": [frame(pack(f)).hex() for f in frames]}
    p = subprocess.run(NOBODY + [py, "-c", PROBE], input=json.dumps(req).encode(), capture_output=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    data = bytes.fromhex(out.pop("stdout"))
    responses = []
    while data:
        (n,) = struct.unpack(">I", data[:4])
        responses.append(msgpack.unpackb(data[4:4 + n], raw=False))
        data = data[4 + n:]
    return out, responses


def test_same_user_cannot_read_memory_or_attach(shared_dir, nobody_bin, nobody_python):
    f = os.path.join(shared_dir, "notes.enc")
    frames = [{"id": 1, "op": "unlock", "name": "k", "cipher": "openssl", "secret": PASSWORD},
              {"id": 2, "op": "count", "key": "k", "files": [f], "terms": ["secret"]}]
    argv = [nobody_bin, "serve", "--workers", "2", "--allow-root", shared_dir]

    # The control: the same probe may read and attach when serve stays dumpable.
    control, _ = probe(nobody_python, argv + ["--allow-dumps"])
    if control["mem"] != "ok" or control["ptrace"] != "ok":
        pytest.skip(f"this kernel does not let a process of the same user attach at all: {control}")

    out, rs = probe(nobody_python, argv, frames)
    assert out["uid"] == out["serve_uid"] != 0
    assert out["maps"] == "EACCES"
    assert out["mem"] == "EACCES"
    assert out["ptrace"] == "EPERM"
    # And it still works as nobody, --allow-root resolving through /proc/self/fd included.
    assert out["status"] == 0
    assert rs[0]["type"] == "ok", rs
    assert rs[1]["counts"] == [40], rs


def limits_core(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]
    return None


def dumpable(pid):
    """A process's /proc files belong to its user while it is dumpable, to root once it is not."""
    return os.stat(f"/proc/{pid}/mem").st_uid != 0


CORE = 1 << 20  # what the tests give the child, so that 0 is cryptcount's doing


def test_no_core_file_and_not_dumpable(nobody_bin):
    with Serve(preexec_fn=as_nobody(core=CORE), executable=nobody_bin) as s:
        assert s.hello_ok(), s.stderr_text()
        assert limits_core(s.pid) == ["0", "0"]
        assert not dumpable(s.pid)
    with Serve("--allow-dumps", preexec_fn=as_nobody(core=CORE), executable=nobody_bin) as s:
        assert s.hello_ok(), s.stderr_text()
        assert limits_core(s.pid) == [str(CORE), str(CORE)]
        assert dumpable(s.pid)


@pytest.mark.parametrize("allow", [False, True])
def test_count_is_hardened_too(shared_dir, nobody_bin, allow):
    """`count` hardens itself at start. It is checked while it waits to write: its JSON output
    is larger than the pipe holds and nobody reads it yet."""
    many = os.path.join(shared_dir, "many")
    if not os.path.isdir(many):
        os.mkdir(many)
        os.chmod(many, 0o755)
        for i in range(4000):
            with open(os.path.join(many, f"{i:04}.txt"), "w") as f:
                f.write("word\n")
            os.chmod(os.path.join(many, f"{i:04}.txt"), 0o644)
    args = [nobody_bin, "count", "--json", "-t", "word", many] + (["--allow-dumps"] if allow else [])
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=as_nobody(core=CORE))
    try:
        want = [str(CORE)] * 2 if allow else ["0", "0"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and limits_core(p.pid) != want:
            time.sleep(0.02)
        assert limits_core(p.pid) == want
        assert dumpable(p.pid) == allow
        assert p.poll() is None  # still there: what was checked was the running count
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.count(b'"counts":[1]') == 4000, err
    finally:
        p.kill()
        p.wait()


# -- MADV_DONTDUMP


def regions(pid):
    """(lo, hi, perms, name, vmflags) for every mapping of the process."""
    out = []
    head = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = head.match(line)
            if m:
                out.append([int(m[1], 16), int(m[2], 16), m[3], m[4], set()])
            elif line.startswith("VmFlags:") and out:
                out[-1][4] = set(line.split()[1:])
    return out


def where(pid, needle):
    """The VmFlags of every anonymous mapping that holds `needle`."""
    found = []
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for lo, hi, perms, name, flags in regions(pid):
            if "r" not in perms or name.startswith("/"):
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
            found += [flags] * data.count(needle)
    return found


def test_keys_and_cached_plaintext_are_left_out_of_dumps(shared_dir):
    f = os.path.join(shared_dir, "notes.enc")
    with Serve("--workers", "2") as s:
        try:
            open(f"/proc/{s.pid}/mem", "rb").close()
        except OSError as e:
            pytest.skip(f"cannot read the coprocess's memory here ({e.strerror})")
        assert s.one({"id": 1, "op": "unlock", "name": "k", "cipher": "openssl", "secret": PASSWORD})["type"] == "ok"
        for rid in (2, 3):
            rs = s.request({"id": rid, "op": "count", "key": "k", "files": [f], "terms": ["secret"]})
            assert rs[0]["counts"] == [40]
        assert rs[0]["cached"] is True
        # The key keeps the password, and nothing else does: every copy is in a dd mapping.
        key_copies = where(s.pid, PASSWORD.encode())
        assert key_copies and all("dd" in flags for flags in key_copies), key_copies
        # The cached plaintext is in one (a worker's scratch buffer may hold another copy).
        assert any("dd" in flags for flags in where(s.pid, MARKER))


# -- --lock-memory


def test_lock_memory_locks_keys_and_cache(shared_dir, nobody_bin):
    f = os.path.join(shared_dir, "notes.enc")
    with Serve("--lock-memory", "--cache-mb", "4", "--workers", "2", preexec_fn=as_nobody(8 << 20),
               executable=nobody_bin) as s:
        assert s.hello_ok(), s.stderr_text()
        before = status_kib(s.pid, "VmLck")
        assert s.one({"id": 1, "op": "unlock", "name": "k", "cipher": "openssl", "secret": PASSWORD})["type"] == "ok"
        with_key = status_kib(s.pid, "VmLck")
        for rid in (2, 3):
            rs = s.request({"id": rid, "op": "count", "key": "k", "files": [f], "terms": ["secret"]})
            assert rs[0]["counts"] == [40]
        assert rs[0]["cached"] is True
        cached = status_kib(s.pid, "VmLck")
        assert before < with_key < cached, (before, with_key, cached)
        # Forgetting the key drops its cache entries, and their pages are unlocked.
        assert s.one({"id": 4, "op": "forget", "name": "k"})["type"] == "ok"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and status_kib(s.pid, "VmLck") >= cached:
            time.sleep(0.02)
        assert status_kib(s.pid, "VmLck") < cached


def test_count_lock_memory_over_the_limit_names_only_what_count_locks(nobody_bin, tmp_path):
    # `count` has no plaintext cache: its message is about the keys, with no --cache-mb advice
    # and no usage line (the command line was right), exit status 1; before any file is read.
    f = tmp_path / "t.txt"
    f.write_bytes(b"x\n")
    p = subprocess.run(["prlimit", "--memlock=65536:65536"] + NOBODY +
                       [nobody_bin, "count", "--lock-memory", "-t", "x", str(f)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert "RLIMIT_MEMLOCK is 64 KiB, but locking the keys (1 MiB) needs 1024 KiB" in err
    assert "--cache-mb" not in err and "Usage" not in err


@pytest.mark.parametrize("cache_mb,memlock", [("256", 64 << 10), ("0", 64 << 10), ("16", 8 << 20)])
def test_lock_memory_over_the_limit_is_a_clear_startup_error(nobody_bin, cache_mb, memlock):
    p = subprocess.run(["prlimit", f"--memlock={memlock}:{memlock}"] + NOBODY +
                       [nobody_bin, "serve", "--lock-memory", "--cache-mb", cache_mb],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    err = p.stderr.decode()
    assert p.returncode == 64, err
    assert "Usage" not in err  # the command line was right: no usage text
    needed_kib = (int(cache_mb) << 10) + 1024
    assert f"RLIMIT_MEMLOCK is {memlock >> 10} KiB" in err
    assert f"needs {needed_kib} KiB" in err and f"ulimit -l {needed_kib}" in err
    # The same limit with a cache that fits starts and serves.
    fits = max(0, (memlock >> 20) - 1)
    if memlock >= 1 << 20:
        assert f"at most {fits} fits" in err
        p = subprocess.run(["prlimit", f"--memlock={memlock}:{memlock}"] + NOBODY +
                           [nobody_bin, "serve", "--lock-memory", "--cache-mb", str(fits)],
                           input=frame(pack({"id": 1, "op": "hello"})), capture_output=True, timeout=20)
        assert p.returncode == 0, p.stderr.decode()


def test_allow_root_that_does_not_resolve_is_a_startup_error_without_usage(tmp_path):
    p = subprocess.run([binary(), "serve", "--allow-root", str(tmp_path / "missing")],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    err = p.stderr.decode()
    assert p.returncode == 64, err
    assert "--allow-root" in err and "No such file or directory" in err and "Usage" not in err
