"""Layer 3, session: request ids, one reader thread that routes responses, waiters, death.

A *sink* is a callable that the reader thread calls with each response of one request (a dict),
or once with a :class:`Death` when the coprocess has gone. Sync callers use a queue's ``put``;
asyncio callers use ``loop.call_soon_threadsafe``. Sinks must not block.
"""

from __future__ import annotations

import itertools
import logging
import queue
import subprocess
import threading
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional, Set, Tuple

from ._stream import pack, unpack
from ._transport import DEFAULT_MAX_FRAME, FrameDecoder, Transport
from .errors import CoprocessDied, ProtocolError, RequestError

log = logging.getLogger("cryptcount")

TERMINAL_TYPES = frozenset({"hello", "ok", "stats", "done", "error"})


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
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.max_frame = DEFAULT_MAX_FRAME
        self.closing = False
        self._ids = itertools.count(1)
        # Reentrant: a query's __del__ (which sends a cancel) may run inside a locked section.
        self._lock = threading.RLock()
        self._pending: Dict[Any, Optional[Sink]] = {}  # None: drop responses until the terminal one
        self._death: Optional[Tuple[Optional[int], str, str]] = None
        self._dead = threading.Event()
        self.orphans: Deque[Dict[str, Any]] = deque(maxlen=16)
        self.active_counts: Set[int] = set()  # count requests not yet done (close() cancels them)
        self._decoder = FrameDecoder(DEFAULT_MAX_FRAME)
        self._reader = threading.Thread(
            target=self._read_loop, name=f"cryptcount-reader-{transport.pid}", daemon=True
        )
        self._reader.start()

    # -- sending -------------------------------------------------------------------------

    def set_max_frame(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._decoder.max_frame = max_frame

    def start(self, msg: Dict[str, Any], sink: Optional[Sink]) -> int:
        """Send a request whose responses go to ``sink``; returns its id."""
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
        try:
            self.transport.write_frame(payload)
        except OSError:
            with self._lock:
                self._pending.pop(rid, None)
            raise self.wait_died(reason="writing to the coprocess failed") from None
        return rid

    def call(self, msg: Dict[str, Any], timeout: Optional[float] = None) -> Dict[str, Any]:
        """Send a request and wait for its one response."""
        box: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        rid = self.start(msg, box.put)
        try:
            resp = box.get(timeout=timeout)
        except queue.Empty:
            self.detach(rid)
            raise TimeoutError(f"no response to {msg.get('op')!r} within {timeout} s") from None
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

    def take_sinks(self, rids: "Set[int]") -> "list[Sink]":
        """Detach these requests and hand back their sinks (close() then tells them of the death)."""
        taken = []
        with self._lock:
            for rid in rids:
                sink = self._pending.get(rid)
                if sink is not None:
                    self._pending[rid] = None
                    taken.append(sink)
        return taken

    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)

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
        if self._dead.wait(timeout):
            return self.died()
        return CoprocessDied(self.transport.proc.poll(), self.transport.stderr_tail.text(), reason)

    def join(self, timeout: Optional[float]) -> None:
        self._reader.join(timeout)

    # -- the reader thread ---------------------------------------------------------------

    def _read_loop(self) -> None:
        reason = ""
        try:
            for frames in self.transport.read_frames(self._decoder):
                for payload in frames:
                    self._route(unpack(payload))
        except ProtocolError as exc:
            reason = str(exc)
        except BaseException as exc:  # the reader must never vanish silently
            reason = f"the driver's reader thread failed: {exc!r}"
        finally:
            self._on_eof(reason)

    def _route(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            raise ProtocolError(f"the coprocess sent a {type(msg).__name__}, not a map")
        rid = msg.get("id")
        if not isinstance(rid, (int, str)):
            rid = None
        terminal = msg.get("type") in TERMINAL_TYPES
        with self._lock:
            sink = self._pending.pop(rid, None) if terminal else self._pending.get(rid)
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
