"""The native fast path: connections with no toxic are relayed by a C thread (`_relay.c`).

A toxic-free connection gives Python nothing to do but copy bytes, one GIL-holding callback
per read. `FastPath` hands such a connection's two sockets to the native relay, which copies
on its own thread with epoll + recv + send, and takes the connection back the moment a toxic
applies to it: `release` returns only after the relay has stopped touching both sockets, with
the bytes it had read but not yet written, so no byte is lost or reordered on the way back.

Where BPF is allowed (root or CAP_BPF + CAP_NET_ADMIN), a connection handed over for the first
time also joins an in-kernel splice (a sockmap verdict program, _sockmap.h): the kernel moves its
bytes from one socket's receive path to the other's send path and the relay thread is not woken
per message at all. The pair leaves the splice for good on its first end of stream, error,
release or burst of bulk traffic; a release then waits (briefly, else `BUSY`) until every
spliced byte has reached its destination, so the order of bytes still holds.

Modes: "kernel" (native + splice, or refuse to start), "native" (the C relay, no splice),
"python" (the event loop), "auto" (the best of these the machine allows; the default).
The relay is a compiled extension built at install time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

log = structlog.get_logger("chaos_mcp.proxy")
RelayMode = Literal["auto", "kernel", "native", "python"]
RELAY_MODES: tuple[RelayMode, ...] = ("auto", "kernel", "native", "python")

try:
    from chaos_mcp.faults.proxy._relay import Relay, splice_available
except ImportError:  # no C compiler when the package was installed
    NATIVE_AVAILABLE = False
else:
    NATIVE_AVAILABLE = True


def splices(mode: RelayMode) -> bool:
    """Whether `mode` will splice in the kernel on this machine, as this process runs."""
    return NATIVE_AVAILABLE and mode in ("auto", "kernel") and splice_available()


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
    """relay=native or relay=kernel was asked for where the machine does not allow it."""


class Busy:
    """`release` could not finish yet: bytes the kernel spliced are still on their way."""


BUSY = Busy()


Finished = Callable[[bool, int, int], None]
"""Called when the relay saw a connection end: (reset, bytes up, bytes down)."""


class FastPath:
    def __init__(self, loop: asyncio.AbstractEventLoop, spin_us: float = 0, kernel: bool = False) -> None:
        self._relay = Relay(spin_us=spin_us, kernel=kernel)
        self._loop = loop
        self._finished: dict[int, Finished] = {}
        self._moved: dict[int, tuple[int, int]] = {}
        self.adopted = 0
        loop.add_reader(self._relay.fileno(), self._on_finished)

    @property
    def kernel(self) -> bool:
        """The in-kernel splice is in use for first hand-overs."""
        return self._relay.kernel()

    def adopt(self, client_fd: int, upstream_fd: int, on_finished: Finished, first: bool = False) -> int:
        """Relay between the two sockets from now on; the handle to release them with.

        first: the sockets were never handed over before, so they may join the in-kernel splice.
        """
        handle = self._relay.adopt(client_fd, upstream_fd, kernel=first)
        self._finished[handle] = on_finished
        self.adopted += 1
        return handle

    def release(
        self, handle: int, force: bool = False, wait_us: float = 0
    ) -> tuple[HalfState, HalfState] | Busy | None:
        """Stop relaying; (up, down) as left, None if the connection already ended, or BUSY.

        None: its end is delivered (the owner's `on_finished` runs) before this returns, so the
        owner never acts on a connection the relay has finished with. BUSY: spliced bytes have
        not reached a destination that stopped reading; the relay keeps the connection (no longer
        spliced) and the owner tries again later; wait_us: how long to wait for them first (the
        event loop waits too). force: release anyway (the connection is being closed, so the
        order of bytes no longer matters).
        """
        state = self._relay.release(handle, force=force, wait_us=wait_us)
        if isinstance(state, bool):
            return BUSY
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

    @property
    def spliced(self) -> int:
        """Connections the kernel splices right now."""
        return self._relay.spliced()

    def splicing(self, handle: int) -> bool:
        """Whether the kernel splices this connection right now."""
        return self._relay.splicing(handle)

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
        if mode in ("native", "kernel"):
            raise NativeRelayUnavailable(
                "relay=native: the native relay extension (chaos_mcp/faults/proxy/_relay.c) was not "
                "built when the package was installed; reinstall with a C compiler, or use relay=auto "
                "or relay=python"
            )
        log.warning("native relay not built; relaying in Python", relay=mode)
        return None
    fast_path = FastPath(asyncio.get_running_loop(), spin_us, kernel=mode in ("auto", "kernel"))
    if mode == "kernel" and not fast_path.kernel:
        fast_path.close()
        raise NativeRelayUnavailable(
            "relay=kernel: the in-kernel splice needs BPF sockmap support and the right to load BPF "
            "programs (root, or CAP_BPF and CAP_NET_ADMIN); run as such, or use relay=auto or relay=native"
        )
    return fast_path
