"""limit_data: pass at most `bytes` bytes on this connection, then close it."""

from __future__ import annotations

from pydantic import Field

from chaos_mcp.faults.proxy.toxics.base import (
    Chunk,
    Stub,
    Toxic,
    next_chunk,
    register_toxic,
)


class _Sent:
    def __init__(self) -> None:
        self.count = 0


@register_toxic
class LimitDataToxic(Toxic):
    type = "limit_data"
    bytes: int = Field(0, ge=0, le=1 << 40, description="bytes allowed through before closing, 0..2^40")

    def new_state(self) -> _Sent:
        return _Sent()

    async def pipe(self, stub: Stub) -> None:
        sent: _Sent = stub.state
        while sent.count < self.bytes:
            item = await next_chunk(stub)
            if item is None:
                return
            allowed = self.bytes - sent.count
            if len(item.data) > allowed:
                stub.discard(len(item.data) - allowed)
                item = Chunk(item.data[:allowed], item.ts)
            sent.count += len(item.data)
            stub.send(item)
        stub.close()
