"""slicer: cut chunks into pieces of about `average_size` ± `size_variation` bytes, `delay` µs apart."""

from __future__ import annotations

import itertools
import random

from pydantic import Field, model_validator

from chaos_mcp.faults.proxy.toxics.base import (
    Chunk,
    Stub,
    Toxic,
    next_chunk,
    register_toxic,
)


@register_toxic
class SlicerToxic(Toxic):
    type = "slicer"
    average_size: int = Field(1, ge=1, le=1 << 20, description="bytes per slice on average, 1..1048576")
    size_variation: int = Field(0, ge=0, le=1 << 20, description="± bytes, less than average_size")
    delay: int = Field(0, ge=0, le=10_000_000, description="microseconds between slices, 0..10000000")

    @model_validator(mode="after")
    def _variation_below_average(self) -> SlicerToxic:
        if self.size_variation >= self.average_size:
            raise ValueError("size_variation must be less than average_size")
        return self

    def cuts(self, size: int) -> list[int]:
        """Slice boundaries for `size` bytes, split about in half recursively (no end bias)."""
        bounds = [0]
        pending = [(0, size)]
        while pending:
            start, end = pending.pop()
            if end - start - self.average_size <= self.size_variation:
                bounds.append(end)
                continue
            shift = random.randint(-self.size_variation, self.size_variation) if self.size_variation else 0
            mid = start + (end - start) // 2 + shift
            pending += [(mid, end), (start, mid)]
        return bounds

    async def pipe(self, stub: Stub) -> None:
        while True:
            item = await next_chunk(stub)
            if item is None:
                return
            if not await self._slice(stub, item):
                return

    async def _slice(self, stub: Stub, chunk: Chunk) -> bool:
        bounds = self.cuts(len(chunk.data))
        for start, end in itertools.pairwise(bounds):
            stub.send(Chunk(chunk.data[start:end], chunk.ts))
            if end < len(chunk.data) and self.delay and not await stub.sleep(self.delay / 1e6):
                stub.send(Chunk(chunk.data[end:], chunk.ts))
                return False
        return True
