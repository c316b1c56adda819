"""Faults (issue 7, item 4): files changing under the server, odd file types, the parent dying,
stdout closing, signals."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from cc_harness import Serve, binary, check_count_done, frame, pack, wait_gone


def make_files(d, n, body):
    out = []
    for i in range(n):
        p = d / f"f{i:05d}"
        p.write_bytes(body)
        out.append(str(p))
    return out


def test_files_removed_or_replaced_while_a_request_runs(tmp_path):
    files = make_files(tmp_path, 3000, b"old " * 200)
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set() and i < len(files):
            f = files[i]
            if i % 2:
                os.unlink(f)
            else:  # replaced by a new file (rename over it)
                tmp = f + ".new"
                with open(tmp, "wb") as w:
                    w.write(b"new " * 100)
                os.rename(tmp, f)
            i += 1

    with Serve("--workers", "2") as s:
        s.send({"id": 1, "op": "count", "files": files, "terms": ["old", "new"]})
        t = threading.Thread(target=churn)
        t.start()
        out = s.until_terminal(1)
        stop.set()
        t.join()
        d = check_count_done(out, 1, len(files))
        assert d["files"] == len(files)
        for r in out[:-1]:
            if "error" in r:
                assert r["error"]["code"] in ("not_found", "io_error"), r
            else:  # one version or the other, whole, never a mix
                assert r["counts"] in ([200, 0], [0, 100]), r
        assert s.hello_ok()


def test_a_file_longer_than_its_stat_size_is_counted_whole():
    """A plain file is read whole into a buffer sized from what fstat said, grown as it fills
    (a file being appended to, a procfs file, whose size is 0). Growing it used to drop what had
    been read: the first MiB of a 1.5 MB file counted as zeros. /proc/PID/environ shows this
    without a race: its size is 0 and its content, a child's environment, is fixed."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for i in range(15):
        env[f"CC_FILLER_{i}"] = "word " * 20_000  # 100 KB each (one string is at most 128 KiB)
    try:
        child = subprocess.Popen(["sleep", "60"], env=env)
    except OSError as e:  # E2BIG where the stack limit leaves less room for the environment
        pytest.skip(f"cannot start a child with a 1.5 MB environment: {e}")
    try:
        path = f"/proc/{child.pid}/environ"
        deadline = time.monotonic() + 10
        while True:  # empty for a moment after the exec
            text = open(path, "rb").read()
            if text or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert os.stat(path).st_size == 0 and len(text) > 1 << 20, (os.stat(path).st_size, len(text))
        want = [text.count(b"word"), text.count(b"CC_FILLER_14=")]
        assert want[0] >= 300_000
        for workers in ("1", "2"):
            with Serve("--workers", workers) as s:
                rs = s.request({"id": 1, "op": "count", "files": [path] * 3, "terms": ["word", "CC_FILLER_14="]})
                assert len(rs) == 4 and rs[-1]["type"] == "done", rs[-1]
                for r in rs[:-1]:
                    assert "error" not in r, r
                    assert r["bytes"] == len(text) and r["counts"] == want, (r["bytes"], r["counts"], want)
        cli = subprocess.run([binary(), "count", "--json", "-t", "word", path], capture_output=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert b'"counts":[%d]' % want[0] in cli.stdout, cli.stdout
    finally:
        child.kill()
        child.wait()


def test_a_file_growing_while_read(tmp_path):
    p = tmp_path / "grow.txt"
    p.write_bytes(b"word " * 200_000)  # 1 MB to start
    stop = threading.Event()

    def grow():
        with open(p, "ab") as f:
            while not stop.is_set():
                f.write(b"word " * 20_000)
                f.flush()
                if f.tell() > 24 << 20:
                    break
                time.sleep(0.001)

    t = threading.Thread(target=grow)
    t.start()
    try:
        with Serve("--workers", "2", "--max-file-size", str(50 << 20)) as s:
            for rid in range(1, 3):
                rs = s.request({"id": rid, "op": "count", "files": [str(p)] * 2, "terms": ["word"]}, timeout=120)
                for r in rs[:-1]:
                    assert "error" not in r, r
                    # Exactly the words in the bytes it read (a prefix of "word word ...").
                    assert r["bytes"] >= 1_000_000 and r["counts"][0] == (r["bytes"] + 1) // 5, r
            assert s.hello_ok()
    finally:
        stop.set()
        t.join()


def test_a_whole_file_format_growing_past_the_limit(tmp_path):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    p = tmp_path / "grow.token"
    p.write_bytes(Fernet(key).encrypt(b"x" * 1000))
    stop = threading.Event()

    def grow():
        with open(p, "ab") as f:
            while not stop.is_set() and f.tell() < (64 << 20):
                f.write(b" " * 65536)

    t = threading.Thread(target=grow)
    t.start()
    try:
        with Serve("--max-file-size", str(4 << 20)) as s:
            for rid in range(1, 4):
                rs = s.request({"id": rid, "op": "count", "files": [str(p)], "cipher": "fernet",
                                "secret": key.decode(), "terms": ["x"]})
                r = rs[0]
                assert r.get("counts") == [1000] or r["error"]["code"] == "too_large", r
    finally:
        stop.set()
        t.join()


def test_directories_fifos_devices_and_sockets_are_not_files(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    link_to_fifo = tmp_path / "link"
    os.symlink(fifo, link_to_fifo)
    paths = [str(fifo), str(tmp_path), "/dev/zero", "/dev/null", "/dev/urandom", str(sock_path),
             str(link_to_fifo), "/proc/self/fd/0", "/dev/stdin", "/"]
    try:
        with Serve() as s:
            for cipher, secret in [("plain", None), ("biographer", "pw"), ("age", None)]:
                req = {"id": cipher, "op": "count", "files": paths, "terms": ["x"], "ordered": True}
                if cipher == "age":
                    req.update(cipher="auto")
                elif secret:
                    req.update(cipher=cipher, secret=secret)
                rs = s.request(req, timeout=10)
                codes = [r.get("error", {}).get("code") for r in rs[:-1]]
                assert codes == ["not_a_file"] * len(paths), (cipher, codes)
            assert s.hello_ok()
    finally:
        sock.close()


PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    p = subprocess.Popen([sys.argv[1], "serve"] + sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    print(p.pid, flush=True)
    time.sleep(3600)
    """
)


@pytest.mark.parametrize("busy", [False, True])
def test_the_parent_dying_ends_the_process(tmp_path, busy):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, binary(), "--workers", "1"], stdout=subprocess.PIPE,
                              text=True)
    try:
        pid = int(parent.stdout.readline())
        if busy:
            # Make it busy first: a request written through /proc (the parent's pipe to it).
            files = make_files(tmp_path, 2000, b"z " * 5000)
            with open(f"/proc/{pid}/fd/0", "wb") as w:
                w.write(frame(pack({"id": 1, "op": "count", "files": files, "terms": ["z"]})))
            time.sleep(0.3)
        assert os.path.exists(f"/proc/{pid}")
        parent.kill()
        parent.wait()
        assert wait_gone(pid, 1.0), "serve outlived its parent by more than a second"
    finally:
        parent.kill()
        parent.wait()


def test_stdout_closed_while_idle_ends_the_process():
    with Serve() as s:
        assert s.hello_ok()
        s.proc.stdout.close()
        assert s.wait(2) == 3  # noticed without any response to write


def test_stdout_closed_while_busy_ends_the_process(tmp_path):
    files = make_files(tmp_path, 2000, b"q " * 5000)
    with Serve("--workers", "2") as s:
        s.send({"id": 1, "op": "count", "files": files, "terms": ["q"]})
        s.recv()
        s.proc.stdout.close()
        assert s.wait(2) == 3


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_signals_while_busy_exit_within_a_second(tmp_path, sig, status):
    files = make_files(tmp_path, 2000, b"q " * 5000)
    with Serve("--workers", "2") as s:
        s.send({"id": 1, "op": "count", "files": files, "terms": ["q"]})
        s.recv()  # busy
        t0 = time.monotonic()
        s.proc.send_signal(sig)
        rc = None
        while time.monotonic() - t0 < 1.0 and rc is None:
            try:
                s.recv(timeout=0.05)  # keep reading so workers are not simply blocked on output
            except (TimeoutError, AssertionError):
                pass
            rc = s.proc.poll()
        assert rc == status, f"exit status {rc} one second after signal {sig}"


def test_sigpipe_is_ignored():
    with Serve() as s:
        assert s.hello_ok()
        os.kill(s.pid, signal.SIGPIPE)
        time.sleep(0.1)
        assert s.alive() and s.hello_ok()


def test_a_write_to_a_broken_pipe_is_an_exit_not_a_signal_death(tmp_path):
    files = make_files(tmp_path, 50, b"q ")
    with Serve() as s:
        s.proc.stdout.close()
        s.send({"id": 1, "op": "count", "files": files, "terms": ["q"]})
        assert s.wait(2) == 3  # not -SIGPIPE


def test_stdin_closed_mid_frame_and_mid_oversize_skip():
    with Serve("--max-frame", "100") as s:
        s.send_raw(b"\x00\x00\x10\x00" + b"x" * 10)  # oversize, skipping, then the input ends
        s.close_input()
        r = s.recv()
        assert r["code"] == "frame_too_large"
        assert s.recv() is None
        assert s.wait(2) == 1
