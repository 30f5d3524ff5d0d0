"""Did an experiment lose its proxy? A daemon restarted during the window dropped the toxics.

Our proxy daemon runs under a supervisor that restarts it when it dies, with its proxies but
without toxics, and counts each restart (`generation` in GET /version; the supervisor's status
file, `<state dir>/proxy-<port>.supervisor.json`, lists when each daemon died). A network fault
records the generation it was injected into; a restart after that and before the window ended
means the fault ended early, and the report must say so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chaos_mcp.engine.journal import FaultRow
from chaos_mcp.faults.proxy.client import ProxyApiError, ProxyClient
from chaos_mcp.faults.proxy.supervisor import read_status
from chaos_mcp.secrets import redact_url

PROXY_KINDS = ("proxy.toxic", "proxy.down")


async def proxy_losses(faults: list[FaultRow], window_end: float) -> list[dict[str, Any]]:
    """One entry per proxy whose daemon restarted after its fault was injected and before
    `window_end`: the proxy, when the daemon died, of what, and a sentence for people."""
    injected_into: dict[tuple[str, str], int] = {}
    for row in faults:
        fields = row.record.get("fields")
        if row.record.get("kind") not in PROXY_KINDS or not isinstance(fields, dict):
            continue
        generation = fields.get("daemon_generation")
        if isinstance(generation, int) and row.status not in ("pending", "not_injected"):
            key = (str(fields.get("api_url")), str(fields.get("proxy")))
            injected_into[key] = min(generation, injected_into.get(key, generation))
    losses = []
    for (api_url, proxy), generation in sorted(injected_into.items()):
        death = await _first_death_after(api_url, generation, window_end)
        if death is not None:
            at = datetime.fromtimestamp(death["at"], UTC).isoformat(timespec="milliseconds")
            losses.append(
                {
                    "proxy": proxy,
                    "api": redact_url(api_url),
                    "at": at,
                    "died_of": death["died_of"],
                    "generation_at_inject": generation,
                    "message": f"the proxy {proxy!r} was lost: its daemon died ({death['died_of']}) and was "
                    f"restarted without its toxics at {at}, so the fault ended early; results after that "
                    "instant measure the system without the fault",
                }
            )
    return losses


async def _first_death_after(api_url: str, generation: int, window_end: float) -> dict[str, Any] | None:
    """The first death of a daemon of `generation` or later before `window_end`, or None.

    From the supervisor's status file when it is on this host (it has every death's time); else
    from GET /version (a newer generation, started before the window ended)."""
    port = urlsplit(api_url).port
    restarts = read_status(port).get("restarts", []) if port else []
    deaths = [
        r
        for r in restarts
        if isinstance(r, dict)
        and isinstance(r.get("at"), int | float)
        and int(r.get("generation", -1)) >= generation
        and r["at"] <= window_end
    ]
    if deaths:
        first = min(deaths, key=lambda r: float(r["at"]))
        return {"at": float(first["at"]), "died_of": str(first.get("died_of", "unknown"))}
    try:
        async with ProxyClient(api_url, timeout=2.0) as client:
            status = await client.status()
    except ProxyApiError:
        return None
    now, started = status.get("generation"), status.get("started_at")
    if (
        isinstance(now, int)
        and now > generation
        and isinstance(started, int | float)
        and started <= window_end
    ):
        return {"at": float(started), "died_of": "unknown"}
    return None
