"""reset_peer: on the first data, wait `timeout` ms, then abort the connection with a TCP RST."""

from __future__ import annotations

from pydantic import Field

from chaos_mcp.faults.proxy.toxics.base import (
    HOUR_MS,
    Stub,
    Toxic,
    next_chunk,
    register_toxic,
)


@register_toxic
class ResetPeerToxic(Toxic):
    type = "reset_peer"
    timeout: int = Field(0, ge=0, le=HOUR_MS, description="milliseconds before the reset; 0 = at once")

    async def pipe(self, stub: Stub) -> None:
        item = await next_chunk(stub)
        if item is None:
            return
        stub.discard(len(item.data))
        if await stub.sleep(self.timeout / 1000.0):
            stub.reset()
