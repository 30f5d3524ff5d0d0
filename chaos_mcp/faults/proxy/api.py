"""The control API: Toxiproxy's routes and JSON shapes, plus /metrics, as a Starlette app.

Errors are always JSON `{"error": "...", "status": N}`. Requests that change state need the
daemon's token (see access.py), else 401. Any body gets a 4xx, never a 500: it is read with a
size cap and a time limit, and parsed without NaN/Infinity and without unbounded recursion. An
unexpected failure is logged (without a traceback) and answered with 500, and never stops the daemon.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from chaos_mcp import __version__
from chaos_mcp.faults.proxy import metrics
from chaos_mcp.faults.proxy.proxy import ProxyError
from chaos_mcp.faults.proxy.registry import ProxyRegistry

log = structlog.get_logger("chaos_mcp.proxy")
Endpoint = Callable[[Request], Awaitable[Response]]
MAX_BODY = 64 * 1024
MAX_DEPTH = 32
MAX_INT = 2**53
BODY_TIMEOUT = 5.0
READ_ONLY = frozenset({"GET", "HEAD"})


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: a lone surrogate echoed back cannot break it."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def error(message: str, status: int) -> Response:
    return AsciiJSONResponse({"error": message, "status": status}, status_code=status)


def guarded(handler: Endpoint, registry: ProxyRegistry, on_change: Callable[[], None]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        changes = request.method not in READ_ONLY
        if changes and not registry.access.authorized(request.headers):
            return error(
                f"{request.method} {request.url.path}: this request changes the daemon and needs its "
                "token: send `Authorization: Bearer <token>` or `X-Chaos-Proxy-Token: <token>` with the "
                "contents of the daemon's token file (see `chaos-mcp proxy --help`)",
                401,
            )
        try:
            response = await handler(request)
        except ProxyError as exc:
            return error(str(exc), exc.status)
        except Exception as exc:
            log.error("control_api_failed", path=request.url.path, error=type(exc).__name__)
            return error("internal error in the proxy daemon; it keeps running, see its log", 500)
        if changes:
            on_change()
        return response

    return endpoint


async def body_json(request: Request) -> Any:
    declared = request.headers.get("content-length", "0")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ProxyError(f"body: larger than {MAX_BODY} bytes; send a smaller JSON object", 413)
    raw = bytearray()
    with anyio.move_on_after(BODY_TIMEOUT) as scope:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise ProxyError(f"body: larger than {MAX_BODY} bytes; send a smaller JSON object", 413)
    if scope.cancelled_caught:
        raise ProxyError(f"body: not received within {BODY_TIMEOUT:g} s; send it in one go", 408)
    if not raw.strip():
        return {}
    return parse_json(bytes(raw))


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProxyError("body: not valid UTF-8; send a JSON object encoded as UTF-8", 400) from None
    depth = _max_depth(text)
    if depth > MAX_DEPTH:
        raise ProxyError(f"body: JSON nested {depth} deep; at most {MAX_DEPTH} levels are accepted", 400)
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        reason = str(exc).split(":")[0] if isinstance(exc, ValueError) else "too deeply nested"
        raise ProxyError(f"body: not valid JSON ({reason}); send a JSON object", 400) from None


def _max_depth(text: str) -> int:
    """Bracket depth, ignoring brackets inside strings: a linear pre-check before the parser recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _bounded_int(digits: str) -> int:
    if len(digits) > 17 or abs(int(digits)) > MAX_INT:
        raise ValueError(f"an integer beyond ±{MAX_INT} (2^53)")
    return int(digits)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is beyond the range of a number")
    return value


def build_app(
    registry: ProxyRegistry,
    status: Callable[[], dict[str, Any]] | None = None,
    on_change: Callable[[], None] | None = None,
) -> Starlette:
    def noop() -> None:
        return None

    changed = on_change or noop

    async def version(request: Request) -> Response:
        info = {"version": __version__, "server": "chaos-mcp-proxy", "api": "toxiproxy-2"}
        return AsciiJSONResponse({**info, **(status() if status else {})})

    async def proxies_index(request: Request) -> Response:
        return AsciiJSONResponse({name: p.to_json() for name, p in registry.proxies.items()})

    async def proxy_create(request: Request) -> Response:
        proxy = await registry.create(await body_json(request))
        return AsciiJSONResponse(proxy.to_json(), status_code=201)

    async def populate(request: Request) -> Response:
        proxies = await registry.populate(await body_json(request))
        return AsciiJSONResponse({"proxies": [p.to_json() for p in proxies]}, status_code=201)

    async def proxy_show(request: Request) -> Response:
        return AsciiJSONResponse(registry.get(request.path_params["proxy"]).to_json())

    async def proxy_update(request: Request) -> Response:
        proxy = await registry.update(request.path_params["proxy"], await body_json(request))
        return AsciiJSONResponse(proxy.to_json())

    async def proxy_delete(request: Request) -> Response:
        await registry.delete(request.path_params["proxy"])
        return Response(status_code=204)

    async def toxics_index(request: Request) -> Response:
        proxy = registry.get(request.path_params["proxy"])
        return AsciiJSONResponse([entry.to_json() for entry in proxy.toxics.values()])

    async def toxic_create(request: Request) -> Response:
        entry = await registry.add_toxic(request.path_params["proxy"], await body_json(request))
        return AsciiJSONResponse(entry.to_json())

    async def toxic_show(request: Request) -> Response:
        proxy = registry.get(request.path_params["proxy"])
        entry = proxy.toxics.get(request.path_params["toxic"])
        if entry is None:
            raise ProxyError(f"toxic {request.path_params['toxic']!r} not found on proxy {proxy.name!r}", 404)
        return AsciiJSONResponse(entry.to_json())

    async def toxic_update(request: Request) -> Response:
        p, t = request.path_params["proxy"], request.path_params["toxic"]
        entry = await registry.update_toxic(p, t, await body_json(request))
        return AsciiJSONResponse(entry.to_json())

    async def toxic_delete(request: Request) -> Response:
        await registry.get(request.path_params["proxy"]).remove_toxic(request.path_params["toxic"])
        return Response(status_code=204)

    async def reset(request: Request) -> Response:
        await registry.reset()
        return Response(status_code=204)

    async def prometheus(request: Request) -> Response:
        return PlainTextResponse(
            metrics.render(registry.proxies.values()), media_type="text/plain; version=0.0.4"
        )

    def route(path: str, handler: Endpoint, *methods: str) -> Route:
        return Route(path, guarded(handler, registry, changed), methods=list(methods))

    routes = [
        route("/version", version, "GET"),
        route("/metrics", prometheus, "GET"),
        route("/reset", reset, "POST"),
        route("/populate", populate, "POST"),
        route("/proxies", proxies_index, "GET"),
        route("/proxies", proxy_create, "POST"),
        route("/proxies/{proxy}", proxy_show, "GET"),
        route("/proxies/{proxy}", proxy_update, "POST", "PATCH"),
        route("/proxies/{proxy}", proxy_delete, "DELETE"),
        route("/proxies/{proxy}/toxics", toxics_index, "GET"),
        route("/proxies/{proxy}/toxics", toxic_create, "POST"),
        route("/proxies/{proxy}/toxics/{toxic}", toxic_show, "GET"),
        route("/proxies/{proxy}/toxics/{toxic}", toxic_update, "POST", "PATCH"),
        route("/proxies/{proxy}/toxics/{toxic}", toxic_delete, "DELETE"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        hint = "; see the routes of the Toxiproxy API (GET /proxies, POST /proxies/{name}/toxics, …)"
        return error(f"{request.method} {request.url.path}: {detail}{hint}", status)

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: http_error})
