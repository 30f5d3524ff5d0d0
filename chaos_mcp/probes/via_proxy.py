"""Probes measure what the application sees: through the target's proxy when it has one.

A proxy fault only affects traffic that crosses the proxy, so a probe that went straight to
the service would see nothing. These helpers rewrite a URL or DSN's host:port to the proxy's
listen address; native faults act on the service itself and are seen either way.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from chaos_mcp.config import ProxySpec


def url_via(url: str, proxy: ProxySpec | None) -> str:
    if proxy is None:
        return url
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{proxy.listen}" if userinfo else proxy.listen
    return urlunsplit(parts._replace(netloc=netloc))


def dsn_via(dsn: str, proxy: ProxySpec | None) -> str:
    if proxy is None:
        return dsn
    if "://" in dsn:
        return url_via(dsn, proxy)
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    host, _, port = proxy.listen.rpartition(":")
    params = {key: str(value) for key, value in conninfo_to_dict(dsn).items() if value is not None}
    return make_conninfo("", **(params | {"host": host, "port": port}))


def address_via(address: str, proxy: ProxySpec | None) -> str:
    return proxy.listen if proxy is not None else address
