"""A named proxy: its listener, live connections, toxics (with their expiry) and counters.

The proxy applies toxics generically: each toxic is attached, with its toxicity rolled once per
connection, to the stream it names. It knows no toxic by name; a toxic that declares
`takes_proxy_down` keeps the proxy down (listener closed, connections dropped) while present.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from chaos_mcp.faults.proxy.connection import ClientSide, Link
from chaos_mcp.faults.proxy.fastpath import FastPath
from chaos_mcp.faults.proxy.toxics.base import Toxic

log = structlog.get_logger("chaos_mcp.proxy")
Stream = Literal["upstream", "downstream"]


class ProxyError(Exception):
    """An API-level failure with the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def split_address(address: str, field_name: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ProxyError(f"{field_name}: expected host:port such as 127.0.0.1:15432, got {address!r}", 400)
    return host.strip("[]"), int(port)


@dataclass
class ToxicEntry:
    name: str
    stream: Stream
    toxicity: float
    toxic: Toxic
    expires_at: float | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.toxic.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.toxic.attributes(),
        }
        if self.expires_at is not None:
            data["expires_at"] = self.expires_at
        return data


@dataclass
class Counters:
    connections_total: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


class Proxy:
    def __init__(
        self, name: str, listen: str, upstream: str, enabled: bool = True, fast_path: FastPath | None = None
    ) -> None:
        split_address(listen, "listen")
        split_address(upstream, "upstream")
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = enabled
        self.fast_path = fast_path
        self.toxics: dict[str, ToxicEntry] = {}
        self.links: set[Link] = set()
        self.counters = Counters()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[ToxicEntry]] = set()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [entry.to_json() for entry in self.toxics.values()],
        }

    def upstream_address(self) -> tuple[str, int]:
        return split_address(self.upstream, "upstream")

    @property
    def down(self) -> bool:
        return not self.enabled or any(e.toxic.takes_proxy_down for e in self.toxics.values())

    # ---- listener ----------------------------------------------------------------------
    async def sync_listener(self) -> None:
        """Listen while up; while down, close the listener and every connection."""
        if self.down:
            await self._stop_listening()
        elif self._server is None:
            await self._start_listening()

    async def _start_listening(self) -> None:
        host, port = split_address(self.listen, "listen")
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: ClientSide(self), host, port, backlog=4096, reuse_address=True
            )
        except OSError as exc:
            raise ProxyError(f"listen: cannot listen on {self.listen}: {exc.strerror or exc}", 409) from None
        bound = self._server.sockets[0].getsockname()
        self.listen = f"{host}:{bound[1]}"
        log.info("proxy listening", proxy=self.name, listen=self.listen, upstream=self.upstream)

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self.links):
            link.close()

    async def relisten(self, listen: str) -> None:
        """Move the listener to `listen` (if it changed), then listen or not as the state says."""
        if listen != self.listen:
            split_address(listen, "listen")
            await self._stop_listening()
            self.listen = listen
        await self.sync_listener()

    async def close(self) -> None:
        for entry in self.toxics.values():
            if entry.timer is not None:
                entry.timer.cancel()
        self.enabled = False
        await self._stop_listening()

    # ---- connections -------------------------------------------------------------------
    def link_opened(self, link: Link) -> None:
        self.links.add(link)
        self.counters.connections_total += 1

    def link_closed(self, link: Link) -> None:
        if link in self.links:
            self.links.discard(link)
            self.counters.bytes_up += link.up.bytes
            self.counters.bytes_down += link.down.bytes

    def bytes_moved(self) -> tuple[int, int]:
        up, down = self.counters.bytes_up, self.counters.bytes_down
        for link in self.links:
            link_up, link_down = link.bytes_moved()
            up += link_up
            down += link_down
        return up, down

    @property
    def native_links(self) -> int:
        return sum(1 for link in self.links if link.native is not None)

    @property
    def spliced_links(self) -> int:
        fast_path = self.fast_path
        if fast_path is None or not fast_path.kernel:
            return 0
        return sum(1 for link in self.links if link.native is not None and fast_path.splicing(link.native))

    def attach_toxics(self, link: Link) -> None:
        for entry in self.toxics.values():
            self._attach(link, entry)

    def _attach(self, link: Link, entry: ToxicEntry) -> None:
        if entry.toxic.takes_proxy_down or random.random() >= entry.toxicity:
            return
        link.reclaim()
        if link.closed:  # it ended while the native relay had it
            return
        direction = link.up if entry.stream == "upstream" else link.down
        direction.add(entry.name, entry.toxic)

    # ---- toxics ------------------------------------------------------------------------
    async def add_toxic(self, entry: ToxicEntry) -> None:
        if entry.name in self.toxics:
            raise ProxyError(f"name: toxic {entry.name!r} already exists on proxy {self.name!r}", 409)
        self.toxics[entry.name] = entry
        self._arm_expiry(entry)
        for link in list(self.links):
            if link.up.dst is not None:
                self._attach(link, entry)
        await self.sync_listener()

    async def remove_toxic(self, name: str) -> ToxicEntry:
        entry = self.toxics.pop(name, None)
        if entry is None:
            raise ProxyError(f"toxic {name!r} not found on proxy {self.name!r}", 404)
        if entry.timer is not None:
            entry.timer.cancel()
        directions = [link.up if entry.stream == "upstream" else link.down for link in self.links]
        await asyncio.gather(*(d.remove(name) for d in directions))
        for link in list(self.links):
            link.try_offload()
        await self.sync_listener()
        return entry

    async def replace_toxic(self, entry: ToxicEntry) -> None:
        await self.remove_toxic(entry.name)
        await self.add_toxic(entry)

    async def reset_toxics(self) -> None:
        for name in list(self.toxics):
            await self.remove_toxic(name)

    def _arm_expiry(self, entry: ToxicEntry) -> None:
        if entry.expires_at is None:
            return
        loop = asyncio.get_running_loop()
        entry.timer = loop.call_later(max(0.0, entry.expires_at - time.time()), self._expire, entry)

    def _expire(self, entry: ToxicEntry) -> None:
        if self.toxics.get(entry.name) is not entry:
            return
        log.info("toxic expired; removing it", proxy=self.name, toxic=entry.name)
        task = asyncio.get_running_loop().create_task(self.remove_toxic(entry.name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
