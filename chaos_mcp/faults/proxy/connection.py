"""One proxied TCP connection: the client-side and upstream-side protocols and their two directions.

`up` carries client → upstream bytes, `down` upstream → client. Both start on the fast path;
toxics attach stages to one direction at a time. With the native fast path (fastpath.py) a
connection that no toxic touches is relayed by the native thread until a toxic applies to it
(`reclaim`) or every toxic is gone again (`try_offload`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import TYPE_CHECKING, cast

import structlog

from chaos_mcp.faults.proxy.fastpath import Busy, HalfState
from chaos_mcp.faults.proxy.pipeline import Direction
from chaos_mcp.faults.proxy.toxics.base import EOF

if TYPE_CHECKING:
    from chaos_mcp.faults.proxy.proxy import Proxy

log = structlog.get_logger("chaos_mcp.proxy")
WRITE_HIGH = 1 << 20
CONNECT_TIMEOUT = 10.0
OFFLOAD_RETRY = 0.005
RECLAIM_WAIT_US = 1000.0  # a first reclaim waits this long for spliced bytes to drain, ...
RECLAIM_RETRY = 0.001  # ... then retries without waiting, backing off ...
RECLAIM_RETRY_MAX = 0.064  # ... to this (a destination that stopped reading holds them)


class Link:
    """A client connection and its upstream connection."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.up = Direction(self)
        self.down = Direction(self)
        self.closed = False
        self.native: int | None = None
        self._handed_over = False
        self._offload_retry: asyncio.TimerHandle | None = None
        self._reclaim_retry: asyncio.TimerHandle | None = None
        self._reclaim_backoff = RECLAIM_RETRY

    # ---- lifecycle ---------------------------------------------------------------------
    def client_connected(self, transport: asyncio.Transport) -> None:
        transport.pause_reading()
        self.up.src = self.down.dst = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        self.proxy.link_opened(self)
        self._connect_task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        host, port = self.proxy.upstream_address()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                transport, _ = await loop.create_connection(lambda: UpstreamSide(self), host, port)
        except (OSError, TimeoutError) as exc:
            log.info("upstream unreachable; closing client", proxy=self.proxy.name, error=str(exc))
            self.close()
            return
        if self.closed:
            transport.close()
            return
        held = self.up.open(), self.down.open()
        self.proxy.attach_toxics(self)
        for direction, hold in zip((self.up, self.down), held, strict=True):
            for item in hold.items:
                direction.entry.put(item)
        self.try_offload()
        if self.native is None and self.up.src is not None and not self.up.paused:
            self.up.src.resume_reading()

    def upstream_connected(self, transport: asyncio.Transport) -> None:
        self.up.dst = self.down.src = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH)

    # ---- the native fast path ------------------------------------------------------------
    def try_offload(self) -> None:
        """Hand the connection to the native relay if nothing in Python holds or shapes its bytes."""
        fast_path = self.proxy.fast_path
        if self._offload_retry is not None:
            self._offload_retry.cancel()
            self._offload_retry = None
        if fast_path is None or self.native is not None or self.closed:
            return
        client, upstream = self.up.src, self.up.dst
        if client is None or upstream is None or client.is_closing() or upstream.is_closing():
            return
        if any(direction.stages or direction.eof for direction in (self.up, self.down)):
            return
        busy = any(direction.pending or direction.paused for direction in (self.up, self.down))
        if busy or client.get_write_buffer_size() or upstream.get_write_buffer_size():
            # Bytes are still on their way through Python: try again once they may have left.
            loop = asyncio.get_running_loop()
            self._offload_retry = loop.call_later(OFFLOAD_RETRY, self.try_offload)
            return
        client.pause_reading()
        upstream.pause_reading()
        try:
            self.native = fast_path.adopt(
                _fileno(client), _fileno(upstream), self._native_finished, first=not self._handed_over
            )
            self._handed_over = True
        except Exception as exc:  # the relay stopped, or out of memory: Python keeps relaying
            log.warning("native relay refused the connection; relaying in Python", error=str(exc))
            client.resume_reading()
            upstream.resume_reading()

    def reclaim(self) -> None:
        """Take the connection back from the native relay, e.g. because a toxic now applies to it.

        If bytes the kernel spliced have not reached a destination that stopped reading, the relay
        keeps the connection, moving nothing itself, and this tries again with back-off; the
        toxics already attached shape what Python reads after that. (The side whose reader
        stopped keeps splicing what it writes until that reader drains: see _relay.c.)
        """
        retrying = self._reclaim_retry is not None
        if self._reclaim_retry is not None:
            self._reclaim_retry.cancel()
            self._reclaim_retry = None
        state = self._release_native(wait_us=0 if retrying else RECLAIM_WAIT_US)
        if isinstance(state, Busy):
            backoff = min(self._reclaim_backoff * 2, RECLAIM_RETRY_MAX)
            self._reclaim_backoff = backoff if retrying else RECLAIM_RETRY
            loop = asyncio.get_running_loop()
            self._reclaim_retry = loop.call_later(self._reclaim_backoff, self._retry_reclaim)
            return
        if state is None:
            return  # not relayed natively, or it ended meanwhile (_native_finished closes the link)
        for direction, half in zip((self.up, self.down), state, strict=True):
            if half.leftover and direction.dst is not None:
                direction.bytes += len(half.leftover)
                direction.dst.write(half.leftover)
        for direction, half in zip((self.up, self.down), state, strict=True):
            if half.shut:  # the relay passed the end of stream on already: only the bookkeeping is left
                direction.eof = True
                self.close_half(direction, already_shut=True)
            elif half.eof:
                direction.put(EOF)
            elif direction.src is not None and not direction.paused and not self.closed:
                direction.src.resume_reading()

    def _retry_reclaim(self) -> None:
        self.reclaim()
        self.try_offload()  # the toxics may have gone while the relay still had the connection

    def _native_finished(self, reset: bool, up: int, down: int) -> None:
        self.native = None
        self.up.bytes += up
        self.down.bytes += down
        if reset:
            self.reset()
        else:
            self.close()

    def _release_native(
        self, force: bool = False, wait_us: float = 0
    ) -> tuple[HalfState, HalfState] | Busy | None:
        """Stop the relay touching the sockets; what it left per direction (its byte counts folded in)."""
        if self.native is None or self.proxy.fast_path is None:
            return None
        handle, self.native = self.native, None
        state = self.proxy.fast_path.release(handle, force, wait_us)
        if isinstance(state, Busy):
            self.native = handle
        elif state is not None:
            for direction, half in zip((self.up, self.down), state, strict=True):
                direction.bytes += half.moved
        return state

    def bytes_moved(self) -> tuple[int, int]:
        """Bytes (up, down) relayed so far, wherever they were relayed."""
        if self.native is None or self.proxy.fast_path is None:
            return self.up.bytes, self.down.bytes
        up, down = self.proxy.fast_path.moved(self.native)
        return self.up.bytes + up, self.down.bytes + down

    # ---- ends ------------------------------------------------------------------------------
    def close_half(self, direction: Direction, already_shut: bool = False) -> None:
        """`direction` reached end of stream: shut its destination for writing, close when both have."""
        dst = direction.dst
        if not already_shut and dst is not None and not dst.is_closing() and dst.can_write_eof():
            with contextlib.suppress(OSError):
                dst.write_eof()
        if self.up.eof and self.down.eof:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._release_native(force=True)  # bytes the relay still held are dropped with the connection
        for transport in (self.up.src, self.up.dst):
            if transport is not None:
                transport.close()
        self._finish()

    def reset(self) -> None:
        """Abort both sides with a TCP RST (SO_LINGER 0)."""
        if self.closed:
            return
        self.closed = True
        self._release_native(force=True)  # bytes the relay still held are dropped with the connection
        for transport in (self.up.src, self.up.dst):
            if transport is None:
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        self._finish()

    def _finish(self) -> None:
        for retry in (self._offload_retry, self._reclaim_retry):
            if retry is not None:
                retry.cancel()
        self.up.cancel()
        self.down.cancel()
        self.proxy.link_closed(self)

    def lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.reset()
        else:
            self.close()


def _fileno(transport: asyncio.Transport) -> int:
    fileno: int = transport.get_extra_info("socket").fileno()
    return fileno


class ClientSide(asyncio.Protocol):
    def __init__(self, proxy: Proxy) -> None:
        self.link = Link(proxy)
        # The hot path: the transport calls the direction's feed directly, one call per read.
        self.data_received = self.link.up.feed  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link.client_connected(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self.link.up.feed(data)

    def eof_received(self) -> bool:
        self.link.up.feed_eof()
        return True

    def pause_writing(self) -> None:
        self.link.down.write_blocked()

    def resume_writing(self) -> None:
        self.link.down.write_unblocked()

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(exc)


class UpstreamSide(asyncio.Protocol):
    def __init__(self, link: Link) -> None:
        self.link = link
        self.data_received = link.down.feed  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link.upstream_connected(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self.link.down.feed(data)

    def eof_received(self) -> bool:
        self.link.down.feed_eof()
        return True

    def pause_writing(self) -> None:
        self.link.up.write_blocked()

    def resume_writing(self) -> None:
        self.link.up.write_unblocked()

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(exc)
