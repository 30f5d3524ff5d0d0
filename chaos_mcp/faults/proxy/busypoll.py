"""Bounded busy-polling of the event loop right after bytes move, to cut wake-up latency.

A sleeping event loop pays for its wake-up on every request: the kernel has to schedule the
process again, and on a virtual machine an idle vCPU has to be woken first. While a
request/response exchange is in flight the answer usually comes back within tens of
microseconds, so for `window` seconds after the last chunk the loop keeps polling (the ready
queue is never empty, so the poller waits with a zero timeout) and yields the CPU to any other
runnable task on every turn. An idle proxy never spins; a busy one spins at most `window`
past its last byte. `window = 0` turns it off.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref

DEFAULT_WINDOW_US = 100
_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BusyPoll] = weakref.WeakKeyDictionary()


class BusyPoll:
    """One per event loop; `poke()` is called by the data path on every chunk it moves."""

    __slots__ = ("__weakref__", "active", "loop", "touched", "until", "window")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.window = 0.0
        self.active = False
        self.touched = False
        self.until = 0.0

    def poke(self) -> None:
        if self.active:
            self.touched = True
        elif self.window > 0:
            self.active = True
            self.until = time.perf_counter() + self.window
            self.loop.call_soon(self._spin)

    def _spin(self) -> None:
        now = time.perf_counter()
        if self.touched:
            self.touched = False
            self.until = now + self.window
        if now < self.until and not self.loop.is_closed():
            os.sched_yield()
            self.loop.call_soon(self._spin)
        else:
            self.active = False


def poller(loop: asyncio.AbstractEventLoop | None = None) -> BusyPoll:
    """The busy-poller of `loop` (default: the running loop)."""
    loop = loop or asyncio.get_running_loop()
    found = _pollers.get(loop)
    if found is None:
        found = _pollers[loop] = BusyPoll(loop)
    return found


def set_window(microseconds: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Spin for `microseconds` after the last chunk on `loop` (0 turns busy-polling off)."""
    if microseconds < 0:
        raise ValueError(f"busy-poll window must be >= 0 microseconds, got {microseconds}")
    poller(loop).window = microseconds / 1e6
