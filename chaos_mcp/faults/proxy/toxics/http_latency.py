"""http_latency: delay matching HTTP requests (method, path prefix, percentage) by `latency` ms."""

from __future__ import annotations

import time

from pydantic import Field

from chaos_mcp.faults.proxy.toxics._http import Head, Piece
from chaos_mcp.faults.proxy.toxics._http_toxic import HttpToxic
from chaos_mcp.faults.proxy.toxics.base import HOUR_MS, Chunk, Stub, register_toxic


@register_toxic
class HttpLatencyToxic(HttpToxic):
    type = "http_latency"
    latency: int = Field(0, ge=0, le=HOUR_MS, description="milliseconds added to each matching request")

    async def affect(self, stub: Stub, piece: Piece, ts: float) -> bool:
        if isinstance(piece, Head):
            wait = ts + self.latency / 1000.0 - time.monotonic()
            held = Chunk(piece.raw, ts)
            if wait > 0 and not await stub.sleep(wait):
                stub.send(held)
                return False
            stub.send(held)
        elif isinstance(piece, bytes):
            stub.send(Chunk(piece, ts))
        return True
