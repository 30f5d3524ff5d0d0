"""timeout: let nothing through; close the connection after `timeout` ms (0 = hold forever)."""

from __future__ import annotations

from pydantic import Field

from chaos_mcp.faults.proxy.toxics.base import (
    EOF,
    HOUR_MS,
    INTERRUPTED,
    TIMED_OUT,
    Chunk,
    Stub,
    Toxic,
    register_toxic,
)


@register_toxic
class TimeoutToxic(Toxic):
    type = "timeout"
    timeout: int = Field(
        0, ge=0, le=HOUR_MS, description="milliseconds before the connection is closed; 0 = never, 0..3600000"
    )

    async def pipe(self, stub: Stub) -> None:
        deadline = stub.started + self.timeout / 1000.0 if self.timeout else None
        while True:
            item = await stub.recv(deadline)
            if item is INTERRUPTED:
                return
            if item is TIMED_OUT:
                stub.close()
                return
            if item is EOF:
                stub.send(EOF)
                return
            assert isinstance(item, Chunk)
            stub.discard(len(item.data))
