"""Layer 1, transport: the child process, its pipes, and the length-prefixed framing.

Nothing here knows about MessagePack or requests: frames in, frames out.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
from collections import deque
from typing import Deque, List, Mapping, Optional, Sequence, Union

from .errors import BinaryNotFound, ProtocolError

_HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
# A pipe holds 64 KiB (Linux's default), so a larger read rarely returns more; and os.read's
# buffer of more than 128 KiB is a fresh mmap (then mremap, munmap): three system calls and a
# page fault per read, which a tiny request pays on every round trip.
_READ_CHUNK = 64 * 1024


# Where a platform wheel puts the executable it carries (absent in the pure-Python install).
BUNDLED_BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "cryptcount")


def bundled_binary() -> Optional[str]:
    """The executable bundled in this package, if it carries one."""
    if os.path.isfile(BUNDLED_BINARY) and os.access(BUNDLED_BINARY, os.X_OK):
        return BUNDLED_BINARY
    return None


def find_binary(binary: Union[str, "os.PathLike[str]", None] = None) -> str:
    """The executable to run: ``binary`` if given, else $CRYPTCOUNT_BIN, else the one bundled in
    the package (platform wheels), else `cryptcount` on PATH."""
    if binary is not None:
        candidate = os.fspath(binary)
        where = "the binary argument"
    elif os.environ.get("CRYPTCOUNT_BIN"):
        candidate = os.environ["CRYPTCOUNT_BIN"]
        where = "$CRYPTCOUNT_BIN"
    else:
        found = bundled_binary() or shutil.which("cryptcount")
        if found is None:
            raise BinaryNotFound(
                "cannot find the cryptcount executable: pass binary=..., set $CRYPTCOUNT_BIN, "
                "install the platform wheel (which carries it), or put `cryptcount` on PATH"
            )
        return found
    # A bare name (no slash) is looked up on PATH, like a shell would.
    if os.sep not in candidate and (os.altsep is None or os.altsep not in candidate):
        found = shutil.which(candidate)
        if found is not None:
            return found
    if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
        raise BinaryNotFound(f"{where} names {candidate!r}, which is not an executable file")
    return candidate


def encode_frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Splits a byte stream into frames (4-byte big-endian length, then that many bytes)."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> List[bytes]:
        if not self._buf and type(data) is bytes:
            # Nothing held back (the usual case): frames are sliced from ``data`` itself.
            return self._feed_fresh(data)
        buf = self._buf
        buf += data
        frames: List[bytes] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (length,) = _HEADER.unpack_from(buf, pos)
            if length == 0 or length > self.max_frame:
                raise ProtocolError(f"the coprocess sent a frame of invalid length {length}")
            if end - pos - 4 < length:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + length]))
            pos += 4 + length
        if pos:
            del buf[:pos]
        return frames

    def _feed_fresh(self, data: bytes) -> List[bytes]:
        frames: List[bytes] = []
        pos = 0
        end = len(data)
        unpack_from = _HEADER.unpack_from
        while end - pos >= 4:
            (length,) = unpack_from(data, pos)
            if length == 0 or length > self.max_frame:
                raise ProtocolError(f"the coprocess sent a frame of invalid length {length}")
            if end - pos - 4 < length:
                break
            frames.append(data[pos + 4 : pos + 4 + length])
            pos += 4 + length
        if pos < end:
            self._buf += data[pos:]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)


class TailBuffer:
    """The last ``limit`` bytes written to a stream (for error messages), thread-safe."""

    def __init__(self, limit: int = 8192) -> None:
        self._limit = limit
        self._chunks: Deque[bytes] = deque()
        self._size = 0
        self._lock = threading.Lock()

    def append(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            while self._size - len(self._chunks[0]) >= self._limit:
                self._size -= len(self._chunks.popleft())

    def text(self, max_lines: int = 20) -> str:
        with self._lock:
            data = b"".join(self._chunks)[-self._limit :]
        lines = data.decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-max_lines:])


class Transport:
    """A running `cryptcount serve` child with framed stdin/stdout and a drained stderr."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Optional[Mapping[str, str]] = None,
        cwd: Union[str, "os.PathLike[str]", None] = None,
    ) -> None:
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                env=None if env is None else dict(env),
                cwd=cwd,
                # Keep terminal Ctrl-C away from the coprocess: the parent decides when it stops.
                start_new_session=True,
            )
        except OSError as exc:
            raise BinaryNotFound(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self._stdin = self.proc.stdin
        self._wfd = self.proc.stdin.fileno()
        self._rfd = self.proc.stdout.fileno()
        self._wlock = threading.Lock()
        self.stderr_tail = TailBuffer()
        self._stderr_thread = threading.Thread(
            target=self._drain_stderr, name=f"cryptcount-stderr-{self.proc.pid}", daemon=True
        )
        self._stderr_thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def write_frame(self, payload: bytes, blocking: bool = True) -> bool:
        """Write one whole frame; frames from different threads never interleave.

        With ``blocking=False`` returns False instead of waiting for another writer.
        Raises OSError (BrokenPipeError) when the coprocess has gone.
        """
        if not self._wlock.acquire(blocking):
            return False
        try:
            data = encode_frame(payload)
            written = os.write(self._wfd, data)
            view = memoryview(data)[written:]
            while view:
                written = os.write(self._wfd, view)
                view = view[written:]
        finally:
            self._wlock.release()
        return True

    @property
    def stdout_fd(self) -> int:
        return self._rfd

    def read_chunk(self) -> bytes:
        """What the coprocess has written to stdout (blocks until something); b"" at the end.
        Called only by the thread holding the session's reader role."""
        try:
            return os.read(self._rfd, _READ_CHUNK)
        except OSError:
            return b""

    def close_stdin(self, blocking: bool = True) -> None:
        if not self._wlock.acquire(blocking):
            return
        try:
            self._stdin.close()
        except OSError:
            pass
        finally:
            self._wlock.release()

    def join_stderr(self, timeout: float) -> None:
        self._stderr_thread.join(timeout)

    def _drain_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        fd = stream.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            self.stderr_tail.append(data)
