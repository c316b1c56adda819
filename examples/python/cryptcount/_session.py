"""Layer 3, session: request ids, the reader role that routes responses, waiters, death.

A *sink* is a callable that the reading thread calls with each response of one request (a dict),
or once with a :class:`Death` when the coprocess has gone. Sync callers use a queue's ``put``;
asyncio callers use ``loop.call_soon_threadsafe``. Sinks must not block.

Who reads the coprocess's stdout: whichever thread holds the *reader role* (a lock). A blocking
caller waiting for its own response (``owned`` requests: :meth:`Session.call`, a sync query's
:meth:`Session.receive`) takes the role itself when it is free, reads and routes every frame
(its own into its box, others' to their sinks) until its own box has something, then lets go:
a lone request costs no thread hand-off. A caller that finds the role taken waits on its box,
registered as a waiter; whoever lets go of the role wakes the waiters (a ``_WAKE`` in their box)
so one of them takes over. The background thread takes the role only for requests nobody waits
on (asyncio sinks, detached requests, cancel acknowledgements) and to read the end of the stream
once the coprocess has exited or is being closed.

Spinning: a caller that sent a request and reads its own answer first polls the pipe without
blocking until ``spin`` seconds after the write, then blocks. A tiny request is answered within
tens of microseconds, sooner than a blocked thread (on a virtual machine, a halted virtual CPU)
can be woken; an idle or slow request costs at most ``spin`` of CPU, once. A spin that runs
out makes the next few waits block at once (_SPIN_BACKOFF_MAX), and a thread that has lately
waited for a CPU does not spin at all (_BUSY_SHARE).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import select
import subprocess
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional, Set, Tuple

from ._stream import pack, unpack
from ._transport import DEFAULT_MAX_FRAME, FrameDecoder, Transport
from .errors import CoprocessDied, ProtocolError, RequestError

log = logging.getLogger("cryptcount")

TERMINAL_TYPES = frozenset({"hello", "ok", "stats", "done", "error"})

# Put in a waiting caller's box when the reader role was let go: try to take it.
_WAKE = object()
# How often the idle background thread checks whether the coprocess has exited unnoticed.
_IDLE_CHECK = 0.5
# How long a caller polls for its answer after sending a request before it blocks (seconds).
DEFAULT_SPIN = 100e-6
# After a spin that ended without an answer, the next 1, 2, 4... (at most this many) waits
# block at once: on a machine too loaded for the answer to come in time, or for requests that
# take longer, spinning would only take a CPU from the coprocess or from other work.
_SPIN_BACKOFF_MAX = 64
# Nor does a thread spin while it has lately waited for a CPU (more than this share of the last
# check's interval, from /proc/thread-self/schedstat, read at most every _BUSY_CHECK seconds):
# then the CPUs are busy, no idle one would need waking, and spinning would only take one.
_BUSY_SHARE = 0.1
_BUSY_CHECK = 0.01
# A spin round (poll, yield, clock) takes a few microseconds when nothing else runs on the CPU;
# a longer one means another thread ran there meanwhile: block, and back off (as a spin that ran
# out).
_SHARED_CPU_ROUND = 30e-6


def _run_queue_wait_ns() -> Optional[int]:
    """Nanoseconds the calling thread has spent runnable but waiting for a CPU (None: unknown)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None


class _CpuBusy:
    """Whether the calling thread has lately waited for a CPU (see _BUSY_SHARE), per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self, now: float) -> bool:
        st = self._local
        at = getattr(st, "at", None)
        if at is not None and now - at < _BUSY_CHECK:
            return st.busy  # type: ignore[no-any-return]
        wait = _run_queue_wait_ns()
        busy = wait is not None and at is not None and st.wait is not None and (
            wait - st.wait > (now - at) * 1e9 * _BUSY_SHARE
        )
        st.at, st.wait, st.busy = now, wait, busy
        return busy


class Death:
    """Delivered to a sink instead of a response when the coprocess has gone."""

    __slots__ = ("error",)

    def __init__(self, error: CoprocessDied) -> None:
        self.error = error


Sink = Callable[[Any], None]


def check_response(resp: Any) -> Dict[str, Any]:
    """The response, or the exception it stands for."""
    if isinstance(resp, Death):
        raise resp.error
    if resp.get("type") == "error":
        raise RequestError(str(resp.get("code")), str(resp.get("message", "")), resp.get("id"))
    return resp  # type: ignore[no-any-return]


class Session:
    def __init__(self, transport: Transport, spin: float = DEFAULT_SPIN) -> None:
        self.transport = transport
        self.spin = max(0.0, spin)
        self._sent_at = 0.0  # time.monotonic() after the last owned request was written
        self._spin_backoff = 0  # waits to skip after the last failed spin (doubles per failure)
        self._spin_skip = 0  # waits still to skip
        self._cpu_busy = _CpuBusy()
        self._poller = select.poll()
        self._poller.register(transport.stdout_fd, select.POLLIN)
        self.max_frame = DEFAULT_MAX_FRAME
        self.closing = False
        self._ids = itertools.count(1)
        # Reentrant: a query's __del__ (which sends a cancel) may run inside a locked section.
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)  # the background thread sleeps on it
        self._pending: Dict[Any, Optional[Sink]] = {}  # None: drop responses until the terminal one
        self._owned: Set[Any] = set()  # pending requests whose caller reads them (receive())
        self._waiters: Set["queue.SimpleQueue[Any]"] = set()  # boxes of callers waiting for the role
        self._role = threading.Lock()  # the reader role: whoever holds it reads stdout
        self._bg_wanted = False  # requests nobody waits on are pending: the background thread reads
        self._eof_wanted = False  # read to the end of the stream (closing, or the coprocess exited)
        self._eof = False
        self._inbox: Deque[bytes] = deque()  # frames read, not yet routed
        self._death: Optional[Tuple[Optional[int], str, str]] = None
        self._dead = threading.Event()
        self.orphans: Deque[Dict[str, Any]] = deque(maxlen=16)
        self.active_counts: Set[int] = set()  # count requests not yet done (close() cancels them)
        self._decoder = FrameDecoder(DEFAULT_MAX_FRAME)
        self._reader = threading.Thread(
            target=self._background, name=f"cryptcount-reader-{transport.pid}", daemon=True
        )
        self._reader.start()

    # -- sending -------------------------------------------------------------------------

    def set_max_frame(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._decoder.max_frame = max_frame

    def start(self, msg: Dict[str, Any], sink: Optional[Sink], owned: bool = False) -> int:
        """Send a request whose responses go to ``sink``; returns its id.

        ``owned``: the caller will wait for the responses with :meth:`receive` (reading them
        itself when no other thread is); otherwise the background thread reads them.
        """
        rid = next(self._ids)
        msg["id"] = rid
        payload = pack(msg)
        if len(payload) > self.max_frame:
            raise RequestError(
                "frame_too_large",
                f"the request is {len(payload)} bytes; the coprocess accepts frames of at most {self.max_frame}",
                rid,
            )
        with self._lock:
            if self._death is not None:
                raise self.died()
            self._pending[rid] = sink
            if owned:
                self._owned.add(rid)
            else:
                self._want_background()
        try:
            self.transport.write_frame(payload)
        except OSError:
            with self._lock:
                self._pending.pop(rid, None)
                self._owned.discard(rid)
            raise self.wait_died(reason="writing to the coprocess failed") from None
        if owned:
            self._sent_at = time.monotonic()
        return rid

    def call(self, msg: Dict[str, Any], timeout: Optional[float] = None) -> Dict[str, Any]:
        """Send a request and wait for its one response."""
        box: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        rid = self.start(msg, box.put, owned=True)
        try:
            resp = self.receive(box, timeout)
        except TimeoutError:
            self.detach(rid)
            raise TimeoutError(f"no response to {msg.get('op')!r} within {timeout} s") from None
        except BaseException:
            self.detach(rid)
            raise
        return check_response(resp)

    def send_nowait(self, msg: Dict[str, Any]) -> None:
        """Fire and forget (used for cancel); safe from __del__ and never raises."""
        try:
            rid = next(self._ids)
            msg["id"] = rid
            payload = pack(msg)
            with self._lock:
                if self._death is not None:
                    return
                self._pending[rid] = None
                self._want_background()
            if not self.transport.write_frame(payload, blocking=False):
                # Another writer holds the pipe (possibly this very thread, if we run inside a
                # __del__ triggered mid-write): hand the frame to a short-lived thread.
                threading.Thread(target=self._write_quietly, args=(payload,), daemon=True).start()
        except Exception:
            pass

    def _write_quietly(self, payload: bytes) -> None:
        try:
            self.transport.write_frame(payload)
        except OSError:
            pass

    def detach(self, rid: int) -> None:
        """Drop the remaining responses of a request (its terminal response still ends it)."""
        with self._lock:
            if rid in self._pending:
                self._pending[rid] = None
                self._owned.discard(rid)
                self._want_background()

    def take_sinks(self, rids: "Set[int]") -> "list[Sink]":
        """Detach these requests and hand back their sinks (close() then tells them of the death)."""
        taken = []
        with self._lock:
            for rid in rids:
                sink = self._pending.get(rid)
                if sink is not None:
                    self._pending[rid] = None
                    self._owned.discard(rid)
                    taken.append(sink)
            if taken:
                self._want_background()
        return taken

    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- receiving -----------------------------------------------------------------------

    def receive(self, box: "queue.SimpleQueue[Any]", timeout: Optional[float] = None) -> Any:
        """The next response in ``box`` (the sink of an ``owned`` request), or a :class:`Death`.

        Reads the coprocess's output on this thread when no other thread is reading it.
        Raises TimeoutError after ``timeout`` seconds (None: no limit).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                item = box.get_nowait()
            except queue.Empty:
                pass
            else:
                if item is _WAKE:
                    continue
                return item
            if not self._role.acquire(blocking=False):
                # Someone else reads: wait to be served, or woken when the role is let go.
                with self._lock:
                    self._waiters.add(box)
                if not self._role.acquire(blocking=False):
                    try:
                        if deadline is None:
                            item = box.get()
                        else:
                            item = box.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        raise TimeoutError("no response in time") from None
                    finally:
                        with self._lock:
                            self._waiters.discard(box)
                    if item is _WAKE:
                        continue
                    return item
                with self._lock:
                    self._waiters.discard(box)
            # This thread holds the reader role.
            try:
                while box.empty():
                    if not self._pump(deadline, spin=True):
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        break
            finally:
                self._role.release()
                self._let_go()
            if box.empty():
                if self._eof:
                    return Death(self.died())
                raise TimeoutError("no response in time")

    def _want_background(self) -> None:
        """(Under the lock.) Requests nobody waits on are pending: have the background thread read."""
        if not self._bg_wanted:
            self._bg_wanted = True
            self._wakeup.notify()

    def _let_go(self) -> None:
        """After releasing the reader role: wake the callers waiting for it, and the background
        thread if requests nobody waits on are pending."""
        with self._lock:
            waiters = list(self._waiters) if self._waiters else ()
            self._waiters.clear()
            if len(self._pending) > len(self._owned):
                self._want_background()
        for box in waiters:
            box.put(_WAKE)

    def _pump(self, deadline: Optional[float], spin: bool = False) -> bool:
        """(Holding the reader role.) Read once and route what arrived. False at the end of the
        stream (the death is then recorded and delivered); True otherwise, also when ``deadline``
        passed with nothing to read. ``spin``: first poll without blocking until ``self.spin``
        after the last request was sent (see the module's docstring)."""
        reason = ""
        try:
            while self._inbox:  # frames left over by an interrupted reader
                self._route(unpack(self._inbox.popleft()))
            if self._eof:
                return False
            if spin and self.spin:
                self._spin_for_input(deadline)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self.transport.stdout_fd], [], [], remaining)[0]:
                    return True
            data = self.transport.read_chunk()
            if data:
                self._inbox.extend(self._decoder.feed(data))
                while self._inbox:
                    self._route(unpack(self._inbox.popleft()))
                return True
            if self._decoder.pending:
                reason = "the coprocess's stdout ended inside a frame"
        except ProtocolError as exc:
            reason = str(exc)
        except Exception as exc:  # the reader must never fail silently
            reason = f"the driver's reader failed: {exc!r}"
        self._eof = True
        self._on_eof(reason)
        return False

    def _spin_for_input(self, deadline: Optional[float]) -> None:
        """(Holding the reader role.) Poll stdout without blocking until it is readable (or hung
        up) or ``self.spin`` has passed since the last request was sent (or ``deadline``), unless
        recent spins failed (then block at once for a while: see _SPIN_BACKOFF_MAX) or the CPUs
        are busy (_BUSY_SHARE)."""
        clock = time.monotonic
        until = self._sent_at + self.spin
        if deadline is not None:
            until = min(until, deadline)
        now = clock()
        if now >= until:
            return  # not right after a request (e.g. the next result of a long stream)
        if self._cpu_busy(now):
            return
        if self._spin_skip:
            self._spin_skip -= 1
            return
        poll = self._poller.poll
        yield_cpu = os.sched_yield
        last = clock()
        while not poll(0):
            # A thread waiting for this CPU runs first: it may be the coprocess's reader, on its
            # way to answer (at once when none is waiting).
            yield_cpu()
            now = clock()
            # A long round means another thread ran on this CPU meanwhile (often the coprocess's
            # reader): the two take turns on one CPU, where blocking costs no more than spinning.
            if now >= until or now - last > _SHARED_CPU_ROUND:
                self._spin_backoff = min(max(1, 2 * self._spin_backoff), _SPIN_BACKOFF_MAX)
                self._spin_skip = self._spin_backoff
                return
            last = now
        self._spin_backoff = 0

    # -- death ---------------------------------------------------------------------------

    @property
    def dead(self) -> bool:
        return self._dead.is_set()

    def died(self) -> CoprocessDied:
        """A fresh exception describing the death (one per raise: tracebacks are per instance)."""
        with self._lock:
            info = self._death
        if info is None:
            return CoprocessDied(None, self.transport.stderr_tail.text(), "the coprocess is not responding")
        return CoprocessDied(info[0], info[1], info[2])

    def wait_died(self, timeout: float = 1.0, reason: str = "") -> CoprocessDied:
        self._read_to_end()
        if self._dead.wait(timeout):
            return self.died()
        return CoprocessDied(self.transport.proc.poll(), self.transport.stderr_tail.text(), reason)

    def join(self, timeout: Optional[float]) -> None:
        """Read to the end of the stream (the coprocess has been told to stop) and wait for the
        background thread to finish."""
        self._read_to_end()
        self._reader.join(timeout)

    def _read_to_end(self) -> None:
        with self._lock:
            self._eof_wanted = True
            self._wakeup.notify()

    # -- the background thread -----------------------------------------------------------

    def _background(self) -> None:
        proc = self.transport.proc
        while True:
            with self._lock:
                while not (self._bg_wanted or self._eof_wanted or self._eof):
                    self._wakeup.wait(_IDLE_CHECK)
                    if proc.poll() is not None:
                        self._eof_wanted = True  # exited while nobody was reading
                if self._eof:
                    return
                self._bg_wanted = False
            with self._role:
                try:
                    while True:
                        with self._lock:
                            if not (self._eof_wanted or len(self._pending) > len(self._owned)):
                                break
                        if not self._pump(None):
                            break
                except BaseException:  # never vanish silently (nothing should get here)
                    log.exception("the cryptcount reader thread failed")
                    self._eof = True
                    self._on_eof("the driver's reader thread failed")
            self._let_go()

    def _route(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            raise ProtocolError(f"the coprocess sent a {type(msg).__name__}, not a map")
        rid = msg.get("id")
        if not isinstance(rid, (int, str)):
            rid = None
        terminal = msg.get("type") in TERMINAL_TYPES
        with self._lock:
            if terminal:
                sink = self._pending.pop(rid, None)
                self._owned.discard(rid)
            else:
                sink = self._pending.get(rid)
        if sink is None:
            if rid is None:
                self.orphans.append(msg)
                log.warning("cryptcount sent a response without an id: %r", msg)
            return
        try:
            sink(msg)
        except Exception:  # e.g. a closed event loop; never let one waiter stop the routing
            log.debug("dropping a response for request %r", rid, exc_info=True)

    def _on_eof(self, reason: str) -> None:
        proc = self.transport.proc
        if reason:
            # Out of sync with the coprocess: nothing further it says can be trusted.
            _kill(proc)
        try:
            returncode: Optional[int] = proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            # It closed stdout but lives on: it can no longer answer anyone.
            _kill(proc)
            try:
                returncode = proc.wait(timeout=0.3)
            except subprocess.TimeoutExpired:
                returncode = None
        self.transport.join_stderr(0.2)
        if not reason:
            reason = "the cryptcount coprocess was closed" if self.closing else "the cryptcount coprocess exited"
        with self._lock:
            self._death = (returncode, self.transport.stderr_tail.text(), reason)
            waiting = self._pending
            self._pending = {}
            self._owned.clear()
            self._wakeup.notify_all()
        self._dead.set()
        for sink in waiting.values():
            if sink is not None:
                try:
                    sink(Death(self.died()))
                except Exception:
                    pass


def _kill(proc: "subprocess.Popen[bytes]") -> None:
    try:
        proc.kill()
    except OSError:
        pass
