"""The shared shape of HTTP-aware toxics: which requests they affect, and the request loop."""

from __future__ import annotations

import random
import re
from abc import abstractmethod

from pydantic import Field, field_validator

from chaos_mcp.faults.proxy.toxics._http import END, Head, Piece, RequestSplitter
from chaos_mcp.faults.proxy.toxics.base import Chunk, Stub, Toxic, next_chunk


class HttpState:
    """Per connection: where the parser is, and whether the current request is affected."""

    def __init__(self) -> None:
        self.splitter = RequestSplitter()
        self.affected = False


class HttpToxic(Toxic):
    streams = ("upstream",)
    method: str = Field("", description="HTTP method to match, e.g. GET; empty = any")
    path_prefix: str = Field("/", description="request paths starting with this, e.g. /api/v1/schedules")
    percentage: float = Field(100.0, ge=0, le=100, description="share of matching requests affected, 0..100")

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z]{1,16}", value):
            raise ValueError("a method name such as GET or POST, or empty for any")
        return value.upper()

    @field_validator("path_prefix")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("a path starting with /, e.g. /api/v1/schedules")
        return value

    def matches(self, head: Head) -> bool:
        if self.method and head.method != self.method:
            return False
        if not head.path.startswith(self.path_prefix):
            return False
        return random.uniform(0, 100) < self.percentage

    def new_state(self) -> HttpState:
        return HttpState()

    def leftovers(self, state: object) -> bytes:
        return state.splitter.leftovers() if isinstance(state, HttpState) else b""

    async def pipe(self, stub: Stub) -> None:
        state: HttpState = stub.state
        while True:
            item = await next_chunk(stub)
            if item is None:
                return
            pieces = state.splitter.feed(item.data)
            for index, piece in enumerate(pieces):
                if not await self._piece(stub, state, piece, item.ts):
                    _send_raw(stub, pieces[index + 1 :], item.ts)
                    return

    async def _piece(self, stub: Stub, state: HttpState, piece: Piece, ts: float) -> bool:
        if isinstance(piece, Head):
            state.affected = self.matches(piece)
        if not state.affected:
            if isinstance(piece, Head):
                stub.send(Chunk(piece.raw, ts))
            elif isinstance(piece, bytes):
                stub.send(Chunk(piece, ts))
            return True
        return await self.affect(stub, piece, ts)

    @abstractmethod
    async def affect(self, stub: Stub, piece: Piece, ts: float) -> bool:
        """Handle one piece of an affected request; False if interrupted (after sending on what it held)."""


def _send_raw(stub: Stub, pieces: list[Piece], ts: float) -> None:
    """Interrupted mid-chunk: pass the rest on unaffected (bytes are never dropped)."""
    data = b"".join(p.raw if isinstance(p, Head) else p for p in pieces if isinstance(p, Head | bytes))
    if data:
        stub.send(Chunk(data, ts))


__all__ = ["END", "HttpState", "HttpToxic"]
