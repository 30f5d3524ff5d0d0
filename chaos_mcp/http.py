"""Streamable HTTP at /mcp: loopback by default, a bearer token anywhere else, DNS-rebinding protection on."""

from __future__ import annotations

import contextlib
import hmac
import os
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from chaos_mcp.config import LOOPBACK_HOSTS, Settings

TOKEN_ENV = "CHAOS_MCP_TOKEN"


class BearerToken:
    """Rejects requests without `Authorization: Bearer <token>`, compared in constant time."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers", [])).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="chaos-mcp"'),
                        ],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b'{"error": "missing or wrong bearer token (Authorization: Bearer ...)"}',
                    }
                )
                return
        await self.app(scope, receive, send)


def security(host: str, port: int) -> TransportSecuritySettings:
    hosts = [f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")] + ["127.0.0.1", "localhost"]
    if host not in LOOPBACK_HOSTS and host not in ("0.0.0.0", "::"):
        hosts += [host, f"{host}:{port}"]
    extra = [h.strip() for h in os.environ.get("CHAOS_MCP_ALLOWED_HOSTS", "").split(",") if h.strip()]
    hosts += extra
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def build_http_app(server: MCPServer[Any], host: str, port: int) -> ASGIApp:
    app: ASGIApp = server.streamable_http_app(transport_security=security(host, port), host=host)
    token = os.environ.get(TOKEN_ENV)
    if host not in LOOPBACK_HOSTS and not token:
        raise PermissionError(
            f"refusing to serve HTTP on {host}: it is reachable from beyond loopback and {TOKEN_ENV} is not "
            f"set. Set {TOKEN_ENV} to a long random token (clients send Authorization: Bearer <token>), or "
            "bind --host 127.0.0.1."
        )
    return BearerToken(app, token) if token else app


def serve_http(server: MCPServer[Any], settings: Settings, host: str, port: int) -> int:
    try:
        app = build_http_app(server, host, port)
    except PermissionError as exc:
        print(f"chaos-mcp: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", log_config=None)
    _KeepOurSignals(config).run()
    return 0


class _KeepOurSignals(uvicorn.Server):
    """uvicorn would replace the kill-switch handlers that `serve` installs for SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
