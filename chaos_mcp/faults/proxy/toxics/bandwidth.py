"""bandwidth: pass data at most `rate` KB/s (1 KB = 1000 bytes); 0 means unlimited."""

from __future__ import annotations

from pydantic import Field

from chaos_mcp.faults.proxy.toxics.base import EOF, INTERRUPTED, Chunk, Stub, Toxic, register_toxic

_SLICE_SECONDS = 0.1


@register_toxic
class BandwidthToxic(Toxic):
    type = "bandwidth"
    rate: int = Field(0, ge=0, le=100_000_000, description="KB/s, 0 = unlimited, up to 100000000")

    async def pipe(self, stub: Stub) -> None:
        while True:
            item = await stub.recv()
            if item is INTERRUPTED:
                return
            if item is EOF or self.rate == 0:
                stub.send(item)
                if item is EOF:
                    return
                continue
            assert isinstance(item, Chunk)
            if not await self._throttle(stub, item):
                return

    async def _throttle(self, stub: Stub, chunk: Chunk) -> bool:
        """Send `chunk` in slices of 100 ms worth of bytes; False if interrupted."""
        per_slice = max(1, int(self.rate * 1000 * _SLICE_SECONDS))
        data = chunk.data
        while data:
            piece, data = data[:per_slice], data[per_slice:]
            if not await stub.sleep(len(piece) / (self.rate * 1000)):
                stub.send(Chunk(piece + data, chunk.ts))
                return False
            stub.send(Chunk(piece, chunk.ts))
        return True
