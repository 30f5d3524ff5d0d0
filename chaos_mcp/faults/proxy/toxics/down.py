"""down: while present, the proxy refuses connections and drops existing ones (enabled=false with an expiry).

The proxy core does not know this toxic by name: it honours the `takes_proxy_down` capability.
"""

from __future__ import annotations

from chaos_mcp.faults.proxy.toxics.base import EOF, INTERRUPTED, Stub, Toxic, register_toxic


@register_toxic
class DownToxic(Toxic):
    type = "down"
    takes_proxy_down = True

    async def pipe(self, stub: Stub) -> None:
        while True:
            item = await stub.recv()
            if item is INTERRUPTED:
                return
            stub.send(item)
            if item is EOF:
                return
