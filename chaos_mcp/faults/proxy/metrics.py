"""GET /metrics: Prometheus text exposition of every proxy's counters."""

from __future__ import annotations

from collections.abc import Iterable

from chaos_mcp.faults.proxy.proxy import Proxy

_METRICS = (
    ("chaos_proxy_up", "gauge", "1 while the proxy accepts connections, 0 while it is down"),
    ("chaos_proxy_connections_total", "counter", "client connections accepted"),
    ("chaos_proxy_connections_active", "gauge", "client connections open now"),
    ("chaos_proxy_connections_native", "gauge", "open connections relayed by the native fast path"),
    ("chaos_proxy_connections_spliced", "gauge", "of those, connections the kernel splices (BPF sockmap)"),
    ("chaos_proxy_bytes_total", "counter", "bytes relayed, by stream (upstream = client to server)"),
    ("chaos_proxy_toxics_active", "gauge", "toxics installed on the proxy"),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _samples(proxy: Proxy) -> Iterable[tuple[str, str, int]]:
    name = f'proxy="{_label(proxy.name)}"'
    up, down = proxy.bytes_moved()
    yield "chaos_proxy_up", name, 0 if proxy.down else 1
    yield "chaos_proxy_connections_total", name, proxy.counters.connections_total
    yield "chaos_proxy_connections_active", name, len(proxy.links)
    yield "chaos_proxy_connections_native", name, proxy.native_links
    yield "chaos_proxy_connections_spliced", name, proxy.spliced_links
    yield "chaos_proxy_bytes_total", f'{name},stream="upstream"', up
    yield "chaos_proxy_bytes_total", f'{name},stream="downstream"', down
    yield "chaos_proxy_toxics_active", name, len(proxy.toxics)


def render(proxies: Iterable[Proxy]) -> str:
    samples = [sample for proxy in proxies for sample in _samples(proxy)]
    lines = []
    for metric, kind, help_text in _METRICS:
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}"]
        lines += [f"{metric}{{{labels}}} {value}" for name, labels, value in samples if name == metric]
    return "\n".join(lines) + "\n"
