"""Security (issue 7, item 5): --allow-root confinement (symlinks, `..`, a symlink swapped
during a request, a root given as a symlink), secrets never in any output, plaintext never on
disk."""

import base64
import os
import subprocess
import threading
import time

import pytest

from cc_harness import Serve, binary, check_count_done

INSIDE = b"insideword\n"
OUTSIDE = b"OUTSIDEWORD\n"
TERMS = ["insideword", "OUTSIDEWORD"]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    out = tmp_path / "outside"
    evil = tmp_path / "root-evil"  # shares the root's name as a prefix
    for d in (root, out, evil, root / "sub"):
        d.mkdir()
    (root / "in.txt").write_bytes(INSIDE)
    (root / "sub" / "deep.txt").write_bytes(INSIDE)
    (out / "secret.txt").write_bytes(OUTSIDE)
    (evil / "x.txt").write_bytes(OUTSIDE)
    os.symlink(out / "secret.txt", root / "link-out")
    os.symlink(out, root / "dir-out")
    os.symlink("../outside/secret.txt", root / "rel-out")
    os.symlink(root / "in.txt", root / "link-in")
    os.symlink("sub/../in.txt", root / "rel-in")
    os.symlink(root / "link-out", root / "chain-out")
    os.symlink(tmp_path / "root", tmp_path / "root-link")  # a root given as a symlink
    return tmp_path


def codes(s, files, rid=1, **extra):
    rs = s.request(dict({"id": rid, "op": "count", "files": files, "terms": TERMS, "ordered": True}, **extra))
    d = check_count_done(rs, rid, len(files))
    out = []
    for r in rs[:-1]:
        if "error" in r:
            out.append(r["error"]["code"])
        else:
            assert r["counts"] == [1, 0], f"outside content was read: {r}"
            out.append("ok")
    assert d["counts"][1] == 0
    return out


@pytest.mark.parametrize("root_arg", ["root", "root-link", "root/sub/.."])
def test_allow_root_confines_every_path(tree, root_arg):
    r = tree / "root"
    inside = [str(r / "in.txt"), str(r / "sub" / "deep.txt"), str(r / "link-in"), str(r / "rel-in"),
              str(r / "sub" / ".." / "in.txt"), str(tree / "root-link" / "in.txt"), "in.txt"]
    outside = [str(tree / "outside" / "secret.txt"), str(r / "link-out"), str(r / "dir-out" / "secret.txt"),
               str(r / "rel-out"), str(r / ".." / "outside" / "secret.txt"), str(r / "chain-out"),
               str(tree / "root-evil" / "x.txt"), "../outside/secret.txt", str(tree / "root-link" / "link-out"),
               "/etc/passwd"]
    with Serve("--allow-root", str(tree / root_arg), cwd=str(r)) as s:
        assert codes(s, inside) == ["ok"] * len(inside)
        assert codes(s, outside, rid=2) == ["outside_root"] * len(outside)
        # The root directory itself and missing files inside it.
        assert codes(s, [str(r), str(r / "missing"), str(r / "sub" / "missing"), "missing"], rid=3) == [
            "not_a_file", "not_found", "not_found", "not_found"]
        # Files that cannot be opened outside are refused as well, whatever the reason (else
        # not_found against permission_denied would tell what exists there).
        unopenable = [str(tree / "outside" / "missing"), "/etc/no-such-file", str(r / "dir-out" / "missing"),
                      str(r / "link-out" / "x"), "../outside/missing", str(r / "missing" / ".." / ".." / "outside"),
                      str(r / ".." / "no-such-dir" / "x")]
        assert codes(s, unopenable, rid=4) == ["outside_root"] * len(unopenable)
        # Sniffing (cipher auto) opens the same way.
        assert codes(s, outside, rid=5, cipher="auto") == ["outside_root"] * len(outside)


def test_several_roots(tree):
    with Serve("--allow-root", str(tree / "root" / "sub"), "--allow-root", str(tree / "outside")) as s:
        got = codes(s, [str(tree / "root" / "sub" / "deep.txt"), str(tree / "root" / "in.txt")])
        assert got == ["ok", "outside_root"]
        rs = s.request({"id": 2, "op": "count", "files": [str(tree / "outside" / "secret.txt")], "terms": TERMS})
        assert rs[0]["counts"] == [0, 1]


def test_a_symlink_swapped_during_requests_never_leaks(tree):
    r = tree / "root"
    flip = r / "flip"
    os.symlink(r / "in.txt", flip)
    stop = threading.Event()
    flips = [0]

    def flipper():
        targets = [str(r / "in.txt"), str(tree / "outside" / "secret.txt")]
        tmp = str(r / "flip.tmp")
        while not stop.is_set():
            os.symlink(targets[flips[0] % 2], tmp)
            os.rename(tmp, flip)  # atomic swap
            flips[0] += 1

    t = threading.Thread(target=flipper)
    t.start()
    seen = {"ok": 0, "outside_root": 0}
    try:
        with Serve("--allow-root", str(r), "--workers", "2") as s:
            for rid in range(1, 21):
                for c in codes(s, [str(flip)] * 500, rid=rid):
                    assert c in seen, c
                    seen[c] += 1
    finally:
        stop.set()
        t.join()
    print(f"symlink race: {flips[0]} flips, {seen}")
    assert seen["ok"] > 0 and seen["outside_root"] > 0, "the race was not exercised"


def test_allow_root_that_does_not_exist_is_a_startup_error(tmp_path):
    p = subprocess.run([binary(), "serve",
                        "--allow-root", str(tmp_path / "nope")], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10)
    assert p.returncode != 0 and b"--allow-root" in p.stderr


# -- secrets never appear in any output


def make_files(tmp_path):
    from cryptography.fernet import Fernet
    import pyrage

    secrets = {}
    files = {}
    fkey = Fernet.generate_key()
    secrets["fernet"] = fkey.decode()
    (tmp_path / "f.token").write_bytes(Fernet(fkey).encrypt(b"hello secret world"))
    files["fernet"] = str(tmp_path / "f.token")
    ident = pyrage.x25519.Identity.generate()
    secrets["age"] = str(ident)
    (tmp_path / "a.age").write_bytes(pyrage.encrypt(b"hello secret world", [ident.to_public()]))
    files["age"] = str(tmp_path / "a.age")
    pw = "Zq7-distinctive-passw0rd-KX41"
    secrets["openssl"] = pw
    subprocess.run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "pass:" + pw, "-out",
                    str(tmp_path / "o.bin")], input=b"hello secret world", check=True)
    files["openssl"] = str(tmp_path / "o.bin")
    secrets["biographer"] = pw + "-bio"
    secrets["biographer-v0"] = pw + "-bio0"
    (tmp_path / "b.bio").write_bytes(b"0123456789abcdef" * 3)  # not of this password: decrypt_failed
    files["biographer"] = files["biographer-v0"] = str(tmp_path / "b.bio")
    return secrets, files


def forms(secret):
    """The secret and the shapes a leak could take."""
    out = {secret.encode()}
    if secret.startswith("AGE-SECRET-KEY-1"):
        out.add(secret[len("AGE-SECRET-KEY-1"):].encode())
        out.add(secret.lower().encode())
    try:
        raw = base64.urlsafe_b64decode(secret)
        if len(raw) == 32:
            out |= {raw, raw[:16], raw[16:], raw.hex().encode()}
    except Exception:
        pass
    return {f for f in out if len(f) >= 8}


def test_secrets_never_appear_in_responses_logs_or_errors(tmp_path):
    secrets, files = make_files(tmp_path)
    with Serve("--log-level", "debug", "--workers", "2") as s:
        s.keep_raw = True
        rid = 0

        def req(**fields):
            nonlocal rid
            rid += 1
            return s.request(dict(fields, id=rid))

        for cipher, secret in secrets.items():
            f = files[cipher]
            ok = req(op="unlock", name="k-" + cipher, cipher=cipher, secret=secret)
            assert ok[-1]["type"] == "ok", ok
            req(op="count", key="k-" + cipher, files=[f, f, "missing"], terms=["secret"], offsets=True, context=2)
            req(op="count", cipher=cipher, secret=secret, files=[f], terms=["secret"])
            req(op="count", cipher=cipher, secret=secret + "x", files=[f], terms=["secret"])  # wrong key
            req(op="count", cipher=cipher, secret=[secret, secret], files=[f])  # maybe bad_secret
            req(op="count", cipher=cipher, secret={"passphrase": secret, "identities": secret}, files=[f])
            req(op="count", cipher="nope", secret=secret, files=[f])
            req(op="count", key="k-" + cipher, secret=secret, files=[f])  # both: bad_request
            req(op="count", key="k-" + cipher, cipher="plain", files=[f])  # mismatch
            req(op="count", key="k-" + cipher, iter=0, files=[f])
            req(op="unlock", name="bad-" + cipher, cipher=cipher, secret=secret[:-3] + "!!!")  # malformed
            req(op="unlock", name="bad2-" + cipher, cipher=cipher, secret=secret.encode())  # as bin
            req(op="unlock", name="bad3-" + cipher, cipher=cipher, secret=secret, ttl=-1)
            req(op="nope", secret=secret)
            req(op="count", files=[f], cipher="auto", keys=["k-" + cipher])
            req(op="stats")
            req(op="forget", name="k-" + cipher)
            req(op="forget", name="k-" + cipher)  # unknown_key
            req(op="cancel", target=rid)
        req(op="hello")
        req(op="shutdown")
        assert s.recv() is None
        assert s.wait(5) == 0
        stdout = bytes(s.out_raw)
        stderr = s.stderr_text().encode()
    assert b"request" in stderr, "debug logging was not on"
    for cipher, secret in secrets.items():
        for form in forms(secret):
            assert form not in stdout, f"a {cipher} secret appeared in a response"
            assert form not in stderr, f"a {cipher} secret appeared in the log"


def test_plaintext_is_never_written_to_disk(tmp_path):
    secrets, files = make_files(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, TMPDIR=str(work), HOME=str(work))
    with Serve("--cache-mb", "64", cwd=str(work), env=env) as s:
        for rnd in range(3):
            for cipher in ("fernet", "age", "openssl"):
                rs = s.request({"id": f"{cipher}{rnd}", "op": "count", "cipher": cipher, "secret": secrets[cipher],
                                "files": [files[cipher]] * 20, "terms": ["secret"]})
                assert rs[0]["counts"] == [1]
            # Every descriptor open for writing is a pipe, a socket or a device, never a file.
            for fd in os.listdir(f"/proc/{s.pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{s.pid}/fd/{fd}")
                    flags = open(f"/proc/{s.pid}/fdinfo/{fd}").read().split("flags:")[1].split()[0]
                except (FileNotFoundError, IndexError):
                    continue
                if int(flags, 8) & 3 and target.startswith("/") and not target.startswith("/dev/"):
                    raise AssertionError(f"fd {fd} writes to {target}")
        assert s.one({"id": "st", "op": "stats"})["cache"]["entries"] > 0
    assert os.listdir(work) == []


# -- no copy of a secret stays in the process's memory


def memory_hits(pid, needles):
    """Where in the process's readable memory each needle occurs (ptrace-level access needed)."""
    hits = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5].startswith("/")):
                continue  # mapped files hold code and data, not secrets
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
            for name, needle in needles:
                if needle in data:
                    hits.append((name, fields[5] if len(fields) > 5 else "anonymous"))
    return hits


def test_no_copy_of_a_secret_stays_in_memory_after_use(tmp_path):
    """After unlock, counts by key and with the secret inline, and forget, the process's memory
    holds no copy of any secret in the form it was sent: keys keep only what they need in
    zeroing storage, and the decoded request's copies are zeroed once it has been handled."""
    secrets, files = make_files(tmp_path)
    with Serve("--workers", "2") as s:
        try:
            open(f"/proc/{s.pid}/mem", "rb").close()
        except OSError as e:
            pytest.skip(f"cannot read the coprocess's memory here ({e.strerror})")
        rid = 0
        for cipher, secret in secrets.items():
            f = files[cipher]
            for req in ({"op": "unlock", "name": "k", "cipher": cipher, "secret": secret},
                        {"op": "count", "key": "k", "files": [f] * 4, "terms": ["secret"]},
                        {"op": "count", "cipher": cipher, "secret": secret, "files": [f] * 4, "terms": ["secret"]},
                        {"op": "count", "cipher": cipher, "secret": [secret], "files": [f]},
                        {"op": "forget", "name": "k"}):
                rid += 1
                rs = s.request(dict(req, id=rid))
                assert rs[-1]["type"] in ("ok", "done", "error"), rs
        assert s.hello_ok()
        needles = [(c, form) for c, secret in secrets.items() for form in forms(secret) if len(form) >= 12]
        hits = []
        for _ in range(20):  # keys are released as the last request using them ends
            hits = memory_hits(s.pid, needles)
            if not hits:
                break
            time.sleep(0.05)
        assert not hits, f"secrets left in memory: {hits}"
