"""One direction of one connection: a fast path straight to the other socket, or a chain of toxics.

    source socket ──feed()──► entry ──► stage 0 ──► stage 1 ──► … ──► sink (the other socket)

With no toxic, `entry` is the sink itself and `feed()` writes the bytes straight to the other
transport (the fast path). Adding a toxic appends a stage; removing one interrupts it, lets it
send on what it holds, and splices its queued input into its output, so no byte is lost or
reordered and the change takes effect on live connections at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from chaos_mcp.faults.proxy import busypoll
from chaos_mcp.faults.proxy.toxics.base import EOF, INTERRUPTED, TIMED_OUT, Chunk, Item, Toxic

log = structlog.get_logger("chaos_mcp.proxy")

PENDING_HIGH = 1 << 20
PENDING_LOW = 1 << 18
_WRITE_BLOCKED = 1
_PIPELINE_FULL = 2


class Output(Protocol):
    def put(self, item: Item) -> None: ...


class ConnectionControl(Protocol):
    def close(self) -> None: ...

    def reset(self) -> None: ...


class Hold:
    """Where bytes wait before the upstream connection exists."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    def put(self, item: Item) -> None:
        self.items.append(item)


class Channel:
    """An unbounded FIFO between two stages that wakes the stage waiting on it."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: deque[Item] = deque()
        self.waiter: asyncio.Future[None] | None = None

    def put(self, item: Item) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _nothing() -> None:
    pass


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Stage:
    """Runs one toxic for one direction; is the `Stub` that toxic sees."""

    def __init__(self, direction: Direction, name: str, toxic: Toxic, state: Any, output: Output) -> None:
        self.direction = direction
        self.name = name
        self.toxic = toxic
        self.state = state
        self.started = time.monotonic()
        self.input = Channel()
        self.output = output
        self.interrupted = False
        self._waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.interrupted = False
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await self.toxic.pipe(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("toxic failed; closing the connection", toxic=self.name)
            self.direction.control.close()

    async def stop(self) -> None:
        """Interrupt the toxic and wait until it has sent on what it held."""
        self.interrupted = True
        if self._waiter is not None:
            _wake(self._waiter)
        if self.task is not None and not self.task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self.task), 1.0)
            except TimeoutError:
                self.task.cancel()
                log.warning("toxic ignored its interruption; cancelled", toxic=self.name)

    # ---- the Stub protocol -------------------------------------------------------------
    async def recv(self, deadline: float | None = None) -> Item:
        items = self.input.items
        while True:
            if self.interrupted:
                return INTERRUPTED
            if items:
                return items.popleft()
            if deadline is not None and time.monotonic() >= deadline:
                return TIMED_OUT
            await self._wait(self.input, None if deadline is None else deadline - time.monotonic())

    async def sleep(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.interrupted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            await self._wait(None, remaining)  # loop: uvloop's timers are ms-grained and may fire early
        return False

    async def _wait(self, channel: Channel | None, seconds: float | None) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        if channel is not None:
            channel.waiter = waiter
        timer = loop.call_later(seconds, _wake, waiter) if seconds is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if channel is not None:
                channel.waiter = None
            if timer is not None:
                timer.cancel()

    def send(self, item: Item) -> None:
        self.output.put(item)

    def discard(self, nbytes: int) -> None:
        self.direction.settle(nbytes)

    def close(self) -> None:
        self.direction.control.close()

    def reset(self) -> None:
        self.direction.control.reset()

    def reply(self, data: bytes) -> None:
        self.direction.reply(data)


class Direction:
    """Bytes from `src` to `dst`; also the sink at the end of the toxic chain."""

    def __init__(self, control: ConnectionControl) -> None:
        self.control = control
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.entry: Output = Hold()
        self.stages: list[Stage] = []
        self.pending = 0
        self.paused = 0
        self.bytes = 0
        self.eof = False
        self.lock = asyncio.Lock()
        self.poke: Callable[[], None] = _nothing

    def open(self) -> Hold:
        """The destination is connected: switch to the fast path; what waited is returned."""
        self.poke = busypoll.poller().poke
        held = self.entry
        self.entry = self
        return held if isinstance(held, Hold) else Hold()

    # ---- data in -----------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.entry is self:
            self.bytes += len(data)
            self.dst.write(data)  # type: ignore[union-attr]
            self.poke()
            return
        self.pending += len(data)
        self.entry.put(Chunk(data))
        if self.pending > PENDING_HIGH:
            self.pause(_PIPELINE_FULL)

    def feed_eof(self) -> None:
        self.entry.put(EOF)

    # ---- the sink ----------------------------------------------------------------------
    def put(self, item: Item) -> None:
        if isinstance(item, Chunk):
            self.bytes += len(item.data)
            if self.dst is not None and not self.dst.is_closing():
                self.dst.write(item.data)
            self.settle(len(item.data))
        elif item is EOF and not self.eof:
            self.eof = True
            self.control.close_half(self)  # type: ignore[attr-defined]

    def settle(self, nbytes: int) -> None:
        self.pending -= nbytes
        if self.paused & _PIPELINE_FULL and self.pending < PENDING_LOW:
            self.resume(_PIPELINE_FULL)

    def reply(self, data: bytes) -> None:
        if self.src is not None and not self.src.is_closing():
            self.src.write(data)

    # ---- flow control ------------------------------------------------------------------
    def pause(self, reason: int) -> None:
        if not self.paused and self.src is not None and not self.src.is_closing():
            self.src.pause_reading()
        self.paused |= reason

    def resume(self, reason: int) -> None:
        self.paused &= ~reason
        if not self.paused and self.src is not None and not self.src.is_closing():
            self.src.resume_reading()

    def write_blocked(self) -> None:
        self.pause(_WRITE_BLOCKED)

    def write_unblocked(self) -> None:
        self.resume(_WRITE_BLOCKED)

    # ---- the toxic chain ---------------------------------------------------------------
    def add(self, name: str, toxic: Toxic) -> None:
        stage = Stage(self, name, toxic, toxic.new_state(), output=self)
        if self.stages:
            self.stages[-1].output = stage.input
        else:
            self.entry = stage.input
        self.stages.append(stage)
        stage.start()

    async def remove(self, name: str) -> None:
        async with self.lock:
            stage = next((s for s in self.stages if s.name == name), None)
            if stage is None:
                return
            await stage.stop()
            leftover = stage.toxic.leftovers(stage.state)
            if leftover:
                stage.output.put(Chunk(leftover))
            while stage.input.items:
                stage.output.put(stage.input.items.popleft())
            index = self.stages.index(stage)
            if index:
                self.stages[index - 1].output = stage.output
            else:
                self.entry = stage.output
            del self.stages[index]

    def cancel(self) -> None:
        for stage in self.stages:
            if stage.task is not None:
                stage.task.cancel()
