"""The fault-injecting TCP proxy daemon (Toxiproxy-compatible control API) and its client.

ProxyDaemon            data path + control API on one event loop (start/stop, or `serve`)
ProxyClient            typed async client for the control API
ToxicSpec              one toxic as the API takes it (type, attributes, stream, toxicity, expiry)
main                   `chaos-mcp proxy` entry point
"""

from chaos_mcp.faults.proxy.client import ProxyApiError, ProxyClient, ToxicSpec
from chaos_mcp.faults.proxy.daemon import ProxyDaemon, main, serve
from chaos_mcp.faults.proxy.toxics import toxic_types

__all__ = ["ProxyApiError", "ProxyClient", "ProxyDaemon", "ToxicSpec", "main", "serve", "toxic_types"]
