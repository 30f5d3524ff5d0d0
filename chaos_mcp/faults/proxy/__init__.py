"""The fault-injecting TCP proxy daemon (Toxiproxy-compatible control API) and its client.

ProxyDaemon            data path + control API on one event loop (start/stop, or `serve`)
ProxyClient            typed async client for the control API
ToxicSpec              one toxic as the API takes it (type, attributes, stream, toxicity, expiry)
main                   `chaos-mcp proxy` entry point

The daemon's names load on first use: fault code and the dead-man warden import the client
and should not pay for uvicorn and the data path they never run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chaos_mcp.faults.proxy.client import ProxyApiError, ProxyClient, ToxicSpec
from chaos_mcp.faults.proxy.toxics import toxic_types

if TYPE_CHECKING:
    from chaos_mcp.faults.proxy.daemon import ProxyDaemon, main, serve

__all__ = ["ProxyApiError", "ProxyClient", "ProxyDaemon", "ToxicSpec", "main", "serve", "toxic_types"]
_DAEMON_NAMES = ("ProxyDaemon", "main", "serve")


def __getattr__(name: str) -> Any:
    if name in _DAEMON_NAMES:
        from chaos_mcp.faults.proxy import daemon

        return getattr(daemon, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
