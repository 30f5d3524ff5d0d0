"""slow_close: when the stream ends, wait `delay` ms before closing it."""

from __future__ import annotations

from pydantic import Field

from chaos_mcp.faults.proxy.toxics.base import EOF, HOUR_MS, INTERRUPTED, Stub, Toxic, register_toxic


@register_toxic
class SlowCloseToxic(Toxic):
    type = "slow_close"
    delay: int = Field(0, ge=0, le=HOUR_MS, description="milliseconds to hold the close, 0..3600000")

    async def pipe(self, stub: Stub) -> None:
        while True:
            item = await stub.recv()
            if item is INTERRUPTED:
                return
            if item is EOF:
                await stub.sleep(self.delay / 1000.0)
                stub.send(EOF)
                return
            stub.send(item)
