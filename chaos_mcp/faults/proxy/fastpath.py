"""The native fast path: connections with no toxic are relayed by a C thread (`_relay.c`).

A toxic-free connection gives Python nothing to do but copy bytes, one GIL-holding callback
per read. `FastPath` hands such a connection's two sockets to the native relay, which copies
on its own thread with epoll + recv + send, and takes the connection back the moment a toxic
applies to it: `release` returns only after the relay has stopped touching both sockets, with
the bytes it had read but not yet written, so no byte is lost or reordered on the way back.

The relay is a compiled extension built at install time; where it could not be built, `mode`
"auto" falls back to the Python data path and "native" refuses to start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

log = structlog.get_logger("chaos_mcp.proxy")
RelayMode = Literal["auto", "native", "python"]
RELAY_MODES: tuple[RelayMode, ...] = ("auto", "native", "python")

try:
    from chaos_mcp.faults.proxy._relay import Relay
except ImportError:  # no C compiler when the package was installed
    NATIVE_AVAILABLE = False
else:
    NATIVE_AVAILABLE = True


@dataclass(frozen=True)
class HalfState:
    """One direction as the relay leaves it.

    leftover: bytes read from the source but not yet written; eof: the source ended; shut: the
    relay already shut the destination for writing (eof with nothing left over); moved: bytes
    the relay wrote to the destination.
    """

    leftover: bytes
    eof: bool
    shut: bool
    moved: int


class NativeRelayUnavailable(RuntimeError):
    """relay=native was asked for where the extension was not built."""


Finished = Callable[[bool, int, int], None]
"""Called when the relay saw a connection end: (reset, bytes up, bytes down)."""


class FastPath:
    def __init__(self, loop: asyncio.AbstractEventLoop, spin_us: float = 0) -> None:
        self._relay = Relay(spin_us=spin_us)
        self._loop = loop
        self._finished: dict[int, Finished] = {}
        self._moved: dict[int, tuple[int, int]] = {}
        self.adopted = 0
        loop.add_reader(self._relay.fileno(), self._on_finished)

    def adopt(self, client_fd: int, upstream_fd: int, on_finished: Finished) -> int:
        """Relay between the two sockets from now on; the handle to release them with."""
        handle = self._relay.adopt(client_fd, upstream_fd)
        self._finished[handle] = on_finished
        self.adopted += 1
        return handle

    def release(self, handle: int) -> tuple[HalfState, HalfState] | None:
        """Stop relaying; (up, down) as left, or None if the connection already ended.

        In that case its end is delivered (the owner's `on_finished` runs) before this returns,
        so the owner never acts on a connection the relay has finished with.
        """
        state = self._relay.release(handle)
        if state is None:
            self._on_finished()
            return None
        self._finished.pop(handle, None)
        self._moved.pop(handle, None)
        up, down = state
        return HalfState(*up), HalfState(*down)

    def moved(self, handle: int) -> tuple[int, int]:
        """Bytes (up, down) the relay has written for this connection so far (never decreasing)."""
        counters = self._relay.counters(handle)
        if counters is None:  # finished, not yet delivered: the last figures read stand until then
            return self._moved.get(handle, (0, 0))
        self._moved[handle] = counters
        return counters

    @property
    def active(self) -> int:
        return self._relay.active()

    def _on_finished(self) -> None:
        for handle, reset, up, down in self._relay.finished():
            self._moved.pop(handle, None)
            callback = self._finished.pop(handle, None)
            if callback is not None:
                callback(reset, up, down)

    def close(self) -> None:
        """Stop the relay thread; call after every connection was released or closed."""
        if not self._loop.is_closed():
            self._loop.remove_reader(self._relay.fileno())
        self._relay.close()


def start(mode: RelayMode, spin_us: float = 0) -> FastPath | None:
    """The fast path for the running loop as `mode` asks; None means the Python data path."""
    if mode == "python":
        return None
    if not NATIVE_AVAILABLE:
        if mode == "native":
            raise NativeRelayUnavailable(
                "relay=native: the native relay extension (chaos_mcp/faults/proxy/_relay.c) was not "
                "built when the package was installed; reinstall with a C compiler, or use relay=auto "
                "or relay=python"
            )
        log.warning("native relay not built; relaying in Python", relay=mode)
        return None
    return FastPath(asyncio.get_running_loop(), spin_us)
