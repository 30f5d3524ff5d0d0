"""The control API: Toxiproxy's routes and JSON shapes, plus /metrics, as a Starlette app.

Errors are always JSON `{"error": "...", "status": N}`; an unexpected failure is logged and
answered with 500, and never stops the daemon.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

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
MAX_BODY = 1 << 20


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def guarded(handler: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ProxyError as exc:
            return error(str(exc), exc.status)
        except Exception:
            log.exception("control API request failed", path=request.url.path)
            return error("internal error in the proxy daemon; it keeps running, see its log", 500)

    return endpoint


async def body_json(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ProxyError(f"body: larger than {MAX_BODY} bytes", 413)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProxyError(f"body: not valid JSON ({exc}); send a JSON object", 400) from None


def build_app(registry: ProxyRegistry) -> Starlette:
    async def version(request: Request) -> Response:
        return JSONResponse({"version": __version__, "server": "chaos-mcp-proxy", "api": "toxiproxy-2"})

    async def proxies_index(request: Request) -> Response:
        return JSONResponse({name: p.to_json() for name, p in registry.proxies.items()})

    async def proxy_create(request: Request) -> Response:
        proxy = await registry.create(await body_json(request))
        return JSONResponse(proxy.to_json(), status_code=201)

    async def populate(request: Request) -> Response:
        proxies = await registry.populate(await body_json(request))
        return JSONResponse({"proxies": [p.to_json() for p in proxies]}, status_code=201)

    async def proxy_show(request: Request) -> Response:
        return JSONResponse(registry.get(request.path_params["proxy"]).to_json())

    async def proxy_update(request: Request) -> Response:
        proxy = await registry.update(request.path_params["proxy"], await body_json(request))
        return JSONResponse(proxy.to_json())

    async def proxy_delete(request: Request) -> Response:
        await registry.delete(request.path_params["proxy"])
        return Response(status_code=204)

    async def toxics_index(request: Request) -> Response:
        proxy = registry.get(request.path_params["proxy"])
        return JSONResponse([entry.to_json() for entry in proxy.toxics.values()])

    async def toxic_create(request: Request) -> Response:
        entry = await registry.add_toxic(request.path_params["proxy"], await body_json(request))
        return JSONResponse(entry.to_json())

    async def toxic_show(request: Request) -> Response:
        proxy = registry.get(request.path_params["proxy"])
        entry = proxy.toxics.get(request.path_params["toxic"])
        if entry is None:
            raise ProxyError(f"toxic {request.path_params['toxic']!r} not found on proxy {proxy.name!r}", 404)
        return JSONResponse(entry.to_json())

    async def toxic_update(request: Request) -> Response:
        p, t = request.path_params["proxy"], request.path_params["toxic"]
        entry = await registry.update_toxic(p, t, await body_json(request))
        return JSONResponse(entry.to_json())

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

    routes = [
        Route("/version", guarded(version), methods=["GET"]),
        Route("/metrics", guarded(prometheus), methods=["GET"]),
        Route("/reset", guarded(reset), methods=["POST"]),
        Route("/populate", guarded(populate), methods=["POST"]),
        Route("/proxies", guarded(proxies_index), methods=["GET"]),
        Route("/proxies", guarded(proxy_create), methods=["POST"]),
        Route("/proxies/{proxy}", guarded(proxy_show), methods=["GET"]),
        Route("/proxies/{proxy}", guarded(proxy_update), methods=["POST", "PATCH"]),
        Route("/proxies/{proxy}", guarded(proxy_delete), methods=["DELETE"]),
        Route("/proxies/{proxy}/toxics", guarded(toxics_index), methods=["GET"]),
        Route("/proxies/{proxy}/toxics", guarded(toxic_create), methods=["POST"]),
        Route("/proxies/{proxy}/toxics/{toxic}", guarded(toxic_show), methods=["GET"]),
        Route("/proxies/{proxy}/toxics/{toxic}", guarded(toxic_update), methods=["POST", "PATCH"]),
        Route("/proxies/{proxy}/toxics/{toxic}", guarded(toxic_delete), methods=["DELETE"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        hint = "; see the routes of the Toxiproxy API (GET /proxies, POST /proxies/{name}/toxics, …)"
        return error(f"{request.method} {request.url.path}: {detail}{hint}", status)

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: http_error})
