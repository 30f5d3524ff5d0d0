"""Network faults through the proxy daemon's control API (ours, or Toxiproxy for `proxy.toxic`).

Both faults carry their own expiry (`expires_at`, the experiment's deadline), so the daemon
ends them on time even if nothing else survives; `revert()` needs only the journal record.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from chaos_mcp.faults.base import Fault, FaultError, register_fault
from chaos_mcp.faults.proxy.client import ProxyApiError, ProxyClient, ToxicSpec
from chaos_mcp.secrets import redact_url

DOWN_TOXIC = "chaos_mcp_down"
RESTART_GRACE = 3.0  # revert and verify wait this long for a supervised daemon that is restarting


@register_fault
@dataclasses.dataclass
class ProxyToxicFault(Fault):
    """Add one toxic to one proxy until `expires_at` (unix time) or revert."""

    kind = "proxy.toxic"
    reach = "listener"
    api_url: str
    proxy: str
    toxic_type: str
    toxic_name: str = ""
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    expires_at: float | None = None
    daemon_generation: int | None = None  # of our daemon at inject: a later one lost the toxic

    def __post_init__(self) -> None:
        if not self.toxic_name:
            self.toxic_name = f"chaos_{self.toxic_type}_{self.stream}"

    async def prepare(self) -> None:
        self.daemon_generation = await daemon_generation(self.api_url)

    def spec(self) -> ToxicSpec:
        if self.stream not in ("upstream", "downstream"):
            raise FaultError(f"stream must be upstream or downstream, got {self.stream!r}")
        return ToxicSpec(
            type=self.toxic_type,
            attributes=dict(self.attributes),
            stream="upstream" if self.stream == "upstream" else "downstream",
            toxicity=self.toxicity,
            name=self.toxic_name,
            expires_at=self.expires_at,
        )

    async def inject(self) -> None:
        if self.expires_at is not None and self.expires_at <= time.time():
            raise FaultError(f"expires_at {self.expires_at:.0f} is already past; nothing injected")
        async with ProxyClient(self.api_url) as client:
            try:
                await client.add_toxic(self.proxy, self.spec())
            except ProxyApiError as exc:
                raise FaultError(f"cannot add toxic to proxy {self.proxy!r}: {exc}") from None

    async def revert(self) -> None:
        async with ProxyClient(self.api_url, restart_grace=RESTART_GRACE) as client:
            try:
                await client.remove_toxic(self.proxy, self.toxic_name, missing_ok=True)
            except ProxyApiError as exc:
                raise FaultError(
                    f"cannot remove toxic {self.toxic_name!r} from {self.proxy!r}: {exc}"
                ) from None

    async def verify(self) -> bool:
        async with ProxyClient(self.api_url, restart_grace=RESTART_GRACE) as client:
            try:
                return await client.get_toxic(self.proxy, self.toxic_name) is not None
            except ProxyApiError as exc:
                if exc.status == 404:
                    return False
                raise FaultError(f"cannot read toxics of proxy {self.proxy!r}: {exc}") from None

    def describe(self) -> str:
        return (
            f"{self.toxic_type} {self.attributes} on {self.stream} of proxy {self.proxy!r} "
            f"(toxicity {self.toxicity:g}) via {redact_url(self.api_url)}"
        )


@register_fault
@dataclasses.dataclass
class ProxyDownFault(Fault):
    """Take a proxy down (connections refused and dropped) until `expires_at` or revert.

    Implemented with our daemon's `down` toxic, which carries an expiry the daemon enforces; a
    plain Toxiproxy (no `down` toxic) would need `enabled: false`, which has no expiry, so
    this fault requires the chaos-mcp proxy daemon.
    """

    kind = "proxy.down"
    reach = "listener"
    api_url: str
    proxy: str
    expires_at: float | None = None
    toxic_name: str = DOWN_TOXIC
    daemon_generation: int | None = None

    async def prepare(self) -> None:
        self.daemon_generation = await daemon_generation(self.api_url)

    def _toxic(self) -> ProxyToxicFault:
        return ProxyToxicFault(
            api_url=self.api_url,
            proxy=self.proxy,
            toxic_type="down",
            toxic_name=self.toxic_name,
            stream="downstream",
            expires_at=self.expires_at,
        )

    async def inject(self) -> None:
        await self._toxic().inject()

    async def revert(self) -> None:
        await self._toxic().revert()

    async def verify(self) -> bool:
        return await self._toxic().verify()

    def describe(self) -> str:
        return f"proxy {self.proxy!r} down (connections refused) via {redact_url(self.api_url)}"


async def daemon_generation(api_url: str) -> int | None:
    """How many times our daemon at `api_url` was restarted so far (GET /version); None for a
    Toxiproxy or a daemon that does not answer (then no restart can be told from the record)."""
    try:
        async with ProxyClient(api_url, timeout=2.0) as client:
            status = await client.status()
    except ProxyApiError:
        return None
    generation = status.get("generation")
    ours = status.get("server") == "chaos-mcp-proxy"
    return generation if ours and isinstance(generation, int) else None
