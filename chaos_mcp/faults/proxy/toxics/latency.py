"""latency: hold each chunk until `latency` ± `jitter` ms after it arrived."""

from __future__ import annotations

import random
import time

from pydantic import Field

from chaos_mcp.faults.proxy.toxics.base import (
    HOUR_MS,
    Stub,
    Toxic,
    next_chunk,
    register_toxic,
)


@register_toxic
class LatencyToxic(Toxic):
    type = "latency"
    latency: int = Field(0, ge=0, le=HOUR_MS, description="milliseconds added to every chunk, 0..3600000")
    jitter: int = Field(0, ge=0, le=HOUR_MS, description="± random milliseconds, 0..3600000")

    def delay(self) -> float:
        jitter = random.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(0.0, self.latency + jitter) / 1000.0

    async def pipe(self, stub: Stub) -> None:
        while True:
            item = await next_chunk(stub)
            if item is None:
                return
            wait = item.ts + self.delay() - time.monotonic()
            if wait > 0 and not await stub.sleep(wait):
                stub.send(item)
                return
            stub.send(item)
