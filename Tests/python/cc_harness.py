"""Drives `cryptcount serve` over pipes, as a parent would (reliability and security tests).

Not a test module: imported by the test_*.py files beside it, by soak.py and by the black-box
fuzzer. The binary is $CRYPTCOUNT_BIN, else .build/debug/cryptcount of this checkout.
"""

import os
import select
import signal
import struct
import subprocess
import time

import sys

import msgpack

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Tests", "Golden"))
from schema_check import check_response  # noqa: E402  (every response read is schema-checked)
TERMINAL = {"hello", "ok", "stats", "done", "error"}


def binary():
    env = os.environ.get("CRYPTCOUNT_BIN")
    if env:
        return env
    return os.path.join(ROOT, ".build", "debug", "cryptcount")


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


class Serve:
    """One `cryptcount serve` process with its pipes."""

    def __init__(self, *args, stderr_to=None, **popen):
        self.proc = subprocess.Popen(
            [binary(), "serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_to if stderr_to is not None else subprocess.PIPE,
            **popen,
        )
        self.buf = bytearray()
        self.pos = 0  # first unread byte of buf
        self.err = bytearray()
        self.keep_raw = False  # keep every byte read from stdout in out_raw (for grepping)
        self.out_raw = bytearray()

    @property
    def pid(self):
        return self.proc.pid

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if f:
                    f.close()
            except OSError:
                pass

    # -- writing
    def send_raw(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, obj):
        self.send_raw(frame(pack(obj)))

    def close_input(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    # -- reading
    def _drain_stderr(self):
        if self.proc.stderr is None:
            return
        fd = self.proc.stderr.fileno()
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.err += chunk

    def _fill(self, n, deadline):
        fd = self.proc.stdout.fileno()
        if len(self.buf) - self.pos < n and self.pos:
            del self.buf[: self.pos]  # compact only when more is needed: linear overall
            self.pos = 0
        while len(self.buf) - self.pos < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no response in time")
            self._drain_stderr()
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not r:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return False
            self.buf += chunk
            if self.keep_raw:
                self.out_raw += chunk
        return True

    def recv(self, timeout=30):
        """The next response, or None at end of output."""
        deadline = time.monotonic() + timeout
        if not self._fill(4, deadline):
            assert len(self.buf) == self.pos, "output ended inside a frame header"
            return None
        (n,) = struct.unpack_from(">I", self.buf, self.pos)
        if not self._fill(4 + n, deadline):
            raise AssertionError("output ended inside a frame")
        p = self.pos + 4
        payload = bytes(self.buf[p : p + n])
        self.pos = p + n
        response = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        check_response(response)
        return response

    def until_terminal(self, rid, timeout=60):
        """Responses up to and including the terminal one for `rid`."""
        out = []
        while True:
            r = self.recv(timeout)
            assert r is not None, f"output ended before the terminal response for {rid!r}"
            out.append(r)
            if r.get("id") == rid and r.get("type") in TERMINAL:
                return out

    def request(self, obj, timeout=60):
        self.send(obj)
        return self.until_terminal(obj.get("id"), timeout)

    def one(self, obj, timeout=30):
        rs = self.request(obj, timeout)
        return rs[-1]

    def stderr_text(self):
        self._drain_stderr()
        return self.err.decode("utf-8", "replace")

    def wait(self, timeout=10):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def alive(self):
        return self.proc.poll() is None

    def rss_kib(self):
        return status_kib(self.pid, "VmRSS")

    def hello_ok(self, rid="hello-check"):
        r = self.one({"id": rid, "op": "hello"}, timeout=20)
        return r.get("type") == "hello" and r.get("id") == rid


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def wait_gone(pid, timeout):
    """True if the process `pid` is gone (or a zombie) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


def check_count_done(responses, rid, nfiles):
    """The invariant for one count: file responses for distinct indexes, then one done with
    files + skipped == nfiles."""
    mine = [r for r in responses if r.get("id") == rid]
    done = [r for r in mine if r.get("type") in TERMINAL]
    assert len(done) == 1, f"{len(done)} terminal responses for {rid!r}"
    d = done[0]
    assert mine[-1] is d, "a file response came after done"
    if d["type"] == "error":
        return d
    files = [r for r in mine if r["type"] == "file"]
    idx = [f["index"] for f in files]
    assert len(set(idx)) == len(idx), "an index was answered twice"
    assert d["files"] == len(files)
    assert d["files"] + d["skipped"] == nfiles
    return d


__all__ = ["Serve", "frame", "pack", "binary", "status_kib", "wait_gone", "check_count_done", "signal"]
