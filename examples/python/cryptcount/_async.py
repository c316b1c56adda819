"""The asyncio API: the same session; its background reader thread hands responses to the event loop."""

from __future__ import annotations

import asyncio
import functools
import os
from types import TracebackType
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Type, Union

from ._client import Coprocess, _Counting
from ._query import CLOSED, CoprocessQuery
from ._session import Session, Sink, check_response
from ._types import CountOptions, FileResult, PathArg, Summary, TermArg, strip, unlock_request
from .errors import CryptCountError


def _resolve(fut: "asyncio.Future[Any]", value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _loop_sink(loop: asyncio.AbstractEventLoop, deliver: Callable[[Any], None]) -> Sink:
    """A sink (called by whichever thread reads the output) that hands each response to ``deliver`` on the loop."""

    def sink(msg: Any) -> None:
        loop.call_soon_threadsafe(deliver, msg)

    return sink


class AsyncCountQuery(CoprocessQuery):
    """A running ``count`` for asyncio: ``async for r in query``.

    Breaking out of the loop, leaving ``async with``/``with``, :meth:`close`, cancelling the
    task that iterates, or dropping the query cancels it in the coprocess if unfinished.
    """

    def __init__(
        self,
        session: Session,
        msg: Dict[str, Any],
        originals: List[Any],
        progress: bool,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._init_query(originals, progress)
        self._loop = loop
        self._queue: "asyncio.Queue[Any]" = asyncio.Queue()
        # One receive step at a time: two tasks awaiting one query would both wait for its last
        # response, and only one would get it.
        self._receiving_task = asyncio.Lock()
        self._start(session, msg, _loop_sink(loop, self._queue.put_nowait))

    async def _receive(self) -> None:
        self._handle(await self._queue.get())

    def _wake(self) -> None:
        # close() may come from any thread (a finalizer): the queue belongs to the loop.
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, CLOSED)
        except RuntimeError:  # the loop is closed: no task can be waiting
            pass

    def __aiter__(self) -> AsyncIterator[FileResult]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[FileResult]:
        try:
            while True:
                while self._buffer:
                    yield self._buffer.popleft()
                if self._finished:
                    self._result()  # its error, or that it was closed before it finished
                    return
                async with self._receiving_task:
                    if not self._finished and not self._buffer:
                        await self._receive()
        finally:
            if not self._finished:
                self.close()

    async def wait(self) -> Summary:
        """Wait until the query has finished; unread results stay available to iteration."""
        while not self._finished:
            async with self._receiving_task:
                if not self._finished:
                    await self._receive()
        return self._result()

    @property
    def summary(self) -> Summary:
        """The totals once the query has finished (``await query.wait()`` to wait for them)."""
        if not self._finished:
            raise CryptCountError("the query has not finished: iterate it or `await query.wait()` first")
        return self._result()

    async def results(self) -> List[FileResult]:
        return [r async for r in self]

    def __enter__(self) -> "AsyncCountQuery":
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()

    async def __aenter__(self) -> "AsyncCountQuery":
        return self

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()


class AsyncCoprocess(_Counting[AsyncCountQuery]):
    """The asyncio face of :class:`Coprocess`; one coprocess serves many tasks at once.

    Start it with ``async with AsyncCoprocess(...) as ac`` (or ``await ac.start()``).
    """

    def __init__(
        self,
        binary: Union[str, "os.PathLike[str]", None] = None,
        workers: Optional[int] = None,
        args: Sequence[Union[str, "os.PathLike[str]"]] = (),
        *,
        env: Optional[Mapping[str, str]] = None,
        cwd: Union[str, "os.PathLike[str]", None] = None,
        start_timeout: float = 10.0,
        spin_us: Optional[int] = None,
    ) -> None:
        self._make = functools.partial(
            Coprocess, binary, workers, args, env=env, cwd=cwd, start_timeout=start_timeout, spin_us=spin_us
        )
        self._core: Optional[Coprocess] = None

    async def start(self) -> "AsyncCoprocess":
        if self._core is None:
            # Spawning and the first hello block: keep them off the event loop.
            self._core = await asyncio.get_running_loop().run_in_executor(None, self._make)
        return self

    @property
    def core(self) -> Coprocess:
        """The underlying thread-based :class:`Coprocess`."""
        if self._core is None:
            raise CryptCountError("the AsyncCoprocess has not been started (use `async with` or `await start()`)")
        return self._core

    @property
    def _session(self) -> Session:
        # The asyncio face is a second API over the same session layer as its core's.
        return self.core._session

    @property
    def pid(self) -> int:
        return self.core.pid

    @property
    def returncode(self) -> Optional[int]:
        return self.core.returncode

    @property
    def server_info(self) -> Dict[str, Any]:
        return self.core.server_info

    @property
    def closed(self) -> bool:
        """True once closed (an AsyncCoprocess never started is not closed)."""
        return self._core is not None and self._core.closed

    @property
    def alive(self) -> bool:
        """True while the coprocess can take requests: started, not closed, not exited."""
        return self._core is not None and self._core.alive

    def stderr_tail(self) -> str:
        return self.core.stderr_tail()

    async def close(self, timeout: float = 5.0) -> None:
        if self._core is not None:
            await asyncio.get_running_loop().run_in_executor(None, functools.partial(self._core.close, timeout))

    aclose = close

    async def __aenter__(self) -> "AsyncCoprocess":
        return await self.start()

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        await self.close()

    async def _call(self, msg: Dict[str, Any], timeout: Optional[float] = None) -> Dict[str, Any]:
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[Any]" = loop.create_future()
        session = self._session
        rid = session.start(msg, _loop_sink(loop, functools.partial(_resolve, fut)))
        try:
            resp = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            # As the thread-based call: the answer, when it comes, is dropped.
            session.detach(rid)
            raise TimeoutError(f"no response to {msg.get('op')!r} within {timeout} s") from None
        except asyncio.CancelledError:
            session.detach(rid)
            raise
        return check_response(resp)

    async def hello(self) -> Dict[str, Any]:
        return strip(await self._call({"op": "hello"}))

    async def unlock(self, name: str, cipher: str, secret: Any = None, **options: Any) -> None:
        await self._call(unlock_request(name, cipher, secret, options))

    async def forget(self, name: str, timeout: Optional[float] = None) -> None:
        """As :meth:`Coprocess.forget`: ``timeout`` seconds to wait for the answer, then
        ``TimeoutError``."""
        await self._call({"op": "forget", "name": name}, timeout)

    async def stats(self) -> Dict[str, Any]:
        return strip(await self._call({"op": "stats"}))

    def _start_count(
        self, files: Iterable[PathArg], terms: Iterable[TermArg], opts: CountOptions, progress: bool
    ) -> AsyncCountQuery:
        msg, originals = opts.request(files, terms)
        return AsyncCountQuery(self._session, msg, originals, progress, asyncio.get_running_loop())
