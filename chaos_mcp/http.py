"""Streamable HTTP at /mcp: loopback by default, a bearer token anywhere else, DNS-rebinding protection
on every path (/metrics too); sessions, connections and slowly arriving requests are bounded."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import h11
import structlog
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from chaos_mcp.config import LOOPBACK_HOSTS, Settings
from chaos_mcp.contract import MAX_MESSAGE_BYTES
from chaos_mcp.wire import INVALID_REQUEST, Rejected, error_reply, oversized, read_message_off_loop

log = structlog.get_logger("chaos_mcp.http")

TOKEN_ENV = "CHAOS_MCP_TOKEN"
MAX_SESSIONS = 64
MAX_CONNECTIONS = 256  # beyond it uvicorn answers 503 at once
SESSION_IDLE_TIMEOUT = 600.0
REQUEST_TIMEOUT_ENV = "CHAOS_MCP_HTTP_REQUEST_TIMEOUT"
REQUEST_TIMEOUT = 10.0  # seconds for a whole request (headers and body) to arrive


class BearerToken:
    """Rejects requests without `Authorization: Bearer <token>`, compared in constant time.

    The scheme is case-insensitive (RFC 7235): `bearer <token>` is accepted too."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers", [])).get(b"authorization", b"")
            scheme, _, credentials = given.strip().partition(b" ")
            valid = scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self.expected)
            if not valid:
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


class BoundedMessages:
    """Every POSTed JSON-RPC message is checked as on stdio (wire.py) before the SDK reads it: a body
    over the size limit, unparseable or out of bounds is answered here with a JSON-RPC error (HTTP
    413 or 400), never a 500 or silence; what passes is replayed to the SDK unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away mid-body
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > MAX_MESSAGE_BYTES:
                await _answer(send, 413, oversized(bytes(body[:4096]), len(body)))
                return
        raw = bytes(body)
        verdict = await read_message_off_loop(raw)
        if isinstance(verdict, Rejected):
            log.warning("message_rejected", reason=verdict.reason[:500])
            await _answer(send, 400, verdict)
            return
        await self.app(scope, _replay(raw, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(send: Send, status: int, verdict: Rejected) -> None:
    payload = json.dumps(verdict.reply or error_reply(None, INVALID_REQUEST, verdict.reason))
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload.encode()})


class HostGuard:
    """The DNS-rebinding checks the SDK applies to /mcp (Host → 421, Origin → 403), on every path:
    /metrics and anything else mounted beside it."""

    def __init__(self, app: ASGIApp, settings: TransportSecuritySettings) -> None:
        self.app = app
        self.checks = TransportSecurityMiddleware(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = await self.checks.validate_request(Request(scope), is_post=False)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class DeadlineH11(H11Protocol):
    """uvicorn times out idle keep-alive connections but not a request that arrives slowly: a
    connection that sends its headers (or body) a byte at a time would be held for ever. Every
    request must arrive whole within the request timeout of the connection opening or of the
    previous response; a request being answered (a tool call, an event stream) is not limited."""

    _deadline: asyncio.TimerHandle | None = None
    _armed_cycle: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._armed_cycle = self.cycle
        self._deadline = self.loop.call_later(request_timeout(), self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        no_new_request = self.cycle is self._armed_cycle
        body_incomplete = self.conn.their_state is h11.SEND_BODY
        if (no_new_request or body_incomplete) and not self.transport.is_closing():
            self.transport.close()


def request_timeout() -> float:
    try:
        return max(0.1, float(os.environ.get(REQUEST_TIMEOUT_ENV, REQUEST_TIMEOUT)))
    except ValueError:
        return REQUEST_TIMEOUT


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
    checks = security(host, port)
    app: ASGIApp = BoundedMessages(
        server.streamable_http_app(
            transport_security=checks,
            host=host,
            max_request_body_size=MAX_MESSAGE_BYTES,
            max_sessions=MAX_SESSIONS,
            session_idle_timeout=SESSION_IDLE_TIMEOUT,
        )
    )
    token = os.environ.get(TOKEN_ENV)
    if host not in LOOPBACK_HOSTS and not token:
        raise PermissionError(
            f"refusing to serve HTTP on {host}: it is reachable from beyond loopback and {TOKEN_ENV} is not "
            f"set. Set {TOKEN_ENV} to a long random token (clients send Authorization: Bearer <token>), or "
            "bind --host 127.0.0.1."
        )
    return HostGuard(BearerToken(app, token) if token else app, checks)


def serve_http(server: MCPServer[Any], settings: Settings, host: str, port: int) -> int:
    try:
        app = build_http_app(server, host, port)
    except PermissionError as exc:
        print(f"chaos-mcp: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        log_config=None,  # uvicorn's own handlers would print plain text; ours are structlog JSON
        http=DeadlineH11,
        timeout_keep_alive=5,
        limit_concurrency=MAX_CONNECTIONS,
    )
    _KeepOurSignals(config).run()
    return 0


class _KeepOurSignals(uvicorn.Server):
    """uvicorn would replace the kill-switch handlers that `serve` installs for SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
