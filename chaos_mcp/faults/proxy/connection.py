"""One proxied TCP connection: the client-side and upstream-side protocols and their two directions.

`up` carries client → upstream bytes, `down` upstream → client. Both start on the fast path;
toxics attach stages to one direction at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import TYPE_CHECKING, cast

import structlog

from chaos_mcp.faults.proxy.pipeline import Direction

if TYPE_CHECKING:
    from chaos_mcp.faults.proxy.proxy import Proxy

log = structlog.get_logger("chaos_mcp.proxy")
WRITE_HIGH = 1 << 20
CONNECT_TIMEOUT = 10.0


class Link:
    """A client connection and its upstream connection."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.up = Direction(self)
        self.down = Direction(self)
        self.closed = False

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
        if self.up.src is not None and not self.up.paused:
            self.up.src.resume_reading()

    def upstream_connected(self, transport: asyncio.Transport) -> None:
        self.up.dst = self.down.src = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH)

    def close_half(self, direction: Direction) -> None:
        """`direction` reached end of stream: shut its destination for writing, close when both have."""
        dst = direction.dst
        if dst is not None and not dst.is_closing() and dst.can_write_eof():
            with contextlib.suppress(OSError):
                dst.write_eof()
        if self.up.eof and self.down.eof:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for transport in (self.up.src, self.up.dst):
            if transport is not None:
                transport.close()
        self._finish()

    def reset(self) -> None:
        """Abort both sides with a TCP RST (SO_LINGER 0)."""
        if self.closed:
            return
        self.closed = True
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
        self.up.cancel()
        self.down.cancel()
        self.proxy.link_closed(self)

    def lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.reset()
        else:
            self.close()


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
