"""Spinning (``spin_us`` / ``serve --spin-us``): after a request, the caller polls for its answer,
and the coprocess, after an answer sent from its reading thread, polls for the next request, for
a bounded time before blocking. It changes latency, never results: timeouts, end of input and a
closed output are still seen in time, and an idle coprocess stops spinning at the bound.
(Results with spinning off, at the default and long are compared in test_reader_role.py.)"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, List

import msgpack
import pytest

import cryptcount._session as _session
from cryptcount import Coprocess


def _cmdline(pid: int) -> List[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _frame(msg: Any) -> bytes:
    payload = msgpack.packb(msg, use_bin_type=True)
    return struct.pack(">I", len(payload)) + payload


def _read_frame(fd: int) -> Any:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = os.read(fd, n - len(data))
            assert chunk, "the coprocess closed its output"
            data += chunk
        return data

    (n,) = struct.unpack(">I", exactly(4))
    return msgpack.unpackb(exactly(n))


def test_spin_us_is_passed_to_the_coprocess_unless_args_set_it(binary: str) -> None:
    with Coprocess(binary) as cc:
        assert "--spin-us" not in _cmdline(cc.pid)  # the server's own default
        assert cc._session.spin == pytest.approx(100e-6)
    with Coprocess(binary, spin_us=0) as cc:
        argv = _cmdline(cc.pid)
        assert argv[argv.index("--spin-us") + 1] == "0"
        assert cc._session.spin == 0
    with Coprocess(binary, args=("--spin-us", "7"), spin_us=250) as cc:
        argv = _cmdline(cc.pid)
        assert argv.count("--spin-us") == 1 and argv[argv.index("--spin-us") + 1] == "7"
        assert cc._session.spin == pytest.approx(250e-6)
    with pytest.raises(ValueError):
        Coprocess(binary, spin_us=-1)


def test_the_coprocess_refuses_a_spin_out_of_range(binary: str) -> None:
    for bad in ("-1", "1000001", "lots"):
        r = subprocess.run([binary, "serve", f"--spin-us={bad}"], stdin=subprocess.DEVNULL, capture_output=True)
        assert r.returncode != 0 and b"spin-us" in r.stderr, (bad, r.stderr)


def test_a_timeout_shorter_than_the_callers_spin_is_kept(binary: str) -> None:
    # The caller would poll for 5 s after sending; its 0.3 s timeout still ends the wait.
    with Coprocess(binary, args=("--spin-us", "0"), spin_us=5_000_000) as cc:
        cc.unlock("k", cipher="biographer", secret="pw")
        os.kill(cc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError):
                cc.forget("k", timeout=0.3)
            assert 0.25 < time.monotonic() - t0 < 3
        finally:
            os.kill(cc.pid, signal.SIGCONT)
        assert cc.stats()["keys"] == 0  # the late forget was done; the session goes on
        assert cc.alive


def test_a_caller_whose_spin_ran_out_blocks_at_once_next_time(binary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    # Spin however loaded the machine is, and whoever else runs on this CPU.
    monkeypatch.setattr(_session, "_BUSY_SHARE", float("inf"))
    monkeypatch.setattr(_session, "_SHARED_CPU_ROUND", float("inf"))
    with Coprocess(binary, args=("--spin-us", "0"), spin_us=300_000) as cc:
        cc.stats()

        def slow_stats() -> float:
            """CPU time this thread spent on a stats call the coprocess answers after 0.5 s."""
            os.kill(cc.pid, signal.SIGSTOP)
            timer = threading.Timer(0.5, os.kill, (cc.pid, signal.SIGCONT))
            timer.start()
            t0 = time.thread_time()
            try:
                cc.stats()
            finally:
                timer.join()
            return time.thread_time() - t0

        first = slow_stats()  # spins 0.3 s in vain, then blocks
        second = slow_stats()  # blocks at once
        assert second < 0.05, (first, second)
        assert first > second
        assert cc.stats()["requests"] >= 4


def test_a_thread_waiting_for_a_cpu_does_not_spin() -> None:
    """The gate: a thread that shares its CPU with a busy process waits for it, and is told so."""
    if _session._run_queue_wait_ns() is None:
        pytest.skip("no /proc/thread-self/schedstat on this system")
    cpu = min(os.sched_getaffinity(0))
    saved = os.sched_getaffinity(0)
    burner = subprocess.Popen(
        ["python3", "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}}); print(flush=True)\nwhile True: pass"],
        stdout=subprocess.PIPE,
    )
    try:
        assert burner.stdout is not None and burner.stdout.readline() == b"\n"  # on the CPU, burning
        os.sched_setaffinity(0, {cpu})
        busy = _session._CpuBusy()

        def burn(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass

        burn(0.05)
        assert busy(time.monotonic()) is False  # the first reading only sets the baseline
        burn(0.2)  # sharing the CPU with the burner: waiting for it about half the time
        assert busy(time.monotonic()) is True
        assert busy(time.monotonic()) is True  # kept until the next reading is due
    finally:
        os.sched_setaffinity(0, saved)
        burner.kill()
        burner.wait()


def test_a_death_during_the_callers_spin_is_reported(binary: str) -> None:
    with Coprocess(binary, args=("--spin-us", "0"), spin_us=5_000_000) as cc:
        os.kill(cc.pid, signal.SIGSTOP)  # the next request is not answered: the caller spins
        killer = subprocess.Popen(["sh", "-c", f"sleep 0.3; kill -KILL {cc.pid}"])
        t0 = time.monotonic()
        try:
            with pytest.raises(Exception) as info:
                cc.stats()
            assert type(info.value).__name__ == "CoprocessDied"
            assert time.monotonic() - t0 < 3  # not the 5 s spin
        finally:
            killer.wait()
        assert not cc.alive


def test_an_idle_coprocess_stops_spinning_at_the_bound(binary: str, tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(b"rain rain sun\n")
    with Coprocess(binary, args=("--spin-us", "200000")) as cc:
        (r,) = cc.count([p], terms=["rain"])  # read, cached
        (r,) = cc.count([p], terms=["rain"])  # answered on the reading thread: it then spins 0.2 s
        assert r.counts == [2]
        time.sleep(0.6)
        before = _cpu_seconds(cc.pid)
        time.sleep(1.0)
        # Idle past the bound: blocked, not polling (at most a few clock ticks of bookkeeping).
        assert _cpu_seconds(cc.pid) - before < 0.05
        # And a request after the idle time is answered as ever.
        (r,) = cc.count([p], terms=["rain", "sun"])
        assert r.counts == [2, 1]


def _serve(binary: str, *args: str) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        [binary, "serve", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
    )


def test_end_of_input_during_the_coprocess_spin_ends_it_at_once(binary: str) -> None:
    proc = _serve(binary, "--spin-us", "1000000")
    try:
        assert proc.stdin is not None and proc.stdout is not None
        os.write(proc.stdin.fileno(), _frame({"op": "hello", "id": 1}))
        assert _read_frame(proc.stdout.fileno())["type"] == "hello"  # now it spins for 1 s
        t0 = time.monotonic()
        proc.stdin.close()
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 0.8  # seen while spinning, not after the spin
        assert proc.stdout.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_closed_output_during_the_coprocess_spin_is_noticed(binary: str) -> None:
    proc = _serve(binary, "--spin-us", "1000000")
    try:
        assert proc.stdin is not None and proc.stdout is not None
        os.write(proc.stdin.fileno(), _frame({"op": "stats", "id": 1}))
        assert _read_frame(proc.stdout.fileno())["type"] == "stats"  # now it spins for 1 s
        t0 = time.monotonic()
        proc.stdout.close()  # the parent stops reading: exit status 3 (stdout closed)
        assert proc.wait(timeout=5) == 3
        assert time.monotonic() - t0 < 0.8  # seen while spinning, not after the spin
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_coprocess_whose_spin_ran_out_blocks_at_once_next_time(binary: str) -> None:
    proc = _serve(binary, "--spin-us", "300000")
    try:
        assert proc.stdin is not None and proc.stdout is not None
        inp, out = proc.stdin.fileno(), proc.stdout.fileno()
        spent = []
        for rid in (1, 2):
            before = _cpu_seconds(proc.pid)
            os.write(inp, _frame({"op": "stats", "id": rid}))
            assert _read_frame(out)["id"] == rid
            time.sleep(0.6)  # no request comes: the first spin runs out, the second is skipped
            spent.append(_cpu_seconds(proc.pid) - before)
        # (The first spin may itself end early, on a busy or shared CPU: the rule is only that a
        # spin that ended without a request is not followed by another at once.)
        assert spent[1] < 0.05, spent
    finally:
        proc.kill()
        proc.wait()
