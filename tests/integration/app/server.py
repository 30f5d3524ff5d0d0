"""The application under test: a Starlette API with a PostgreSQL pool and a Redis cache.

    GET  /health                   200 {"status": "ok"} when the database and the cache answer,
                                   503 {"status": "degraded", "db": …, "cache": …} otherwise
    GET  /api/v1/schedules         rows of `schedules`, cached in Redis for CACHE_TTL seconds; when
                                   the database fails it serves the cached copy, else 503
    GET  /api/v1/schedules/{id}    one row (database only; 404 when absent, 503 when the DB fails)
    GET  /ready                    200 always; {"status": "ready"} or {"status": "not_ready"}
                                   (a readiness route whose HTTP status says nothing)
    POST /admin/failing            {"failing": true|false}: every other route answers 503 while on
                                   (lets a benchmark decide the instant the API starts failing)
    POST /admin/ready              {"ready": true|false}: what /ready says

With APP_LOG=PATH every request is logged there as one line: ISO timestamp, level (ERROR for a
5xx), method, path, status, milliseconds. With APP_LOG_LEAKS=1 each line also carries the
database DSN, password included (the mistake the logs probe must catch). With APP_TOKEN set,
every route but /admin/* needs `Authorization: Bearer <APP_TOKEN>` (else 401).

Every dependency call is bounded (DB_TIMEOUT, CACHE_TIMEOUT), so a lost database makes the API
answer 503 quickly instead of hanging. Run: `python -m tests.integration.app.server --port N` with
APP_DSN and APP_REDIS_URL in the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import anyio
import psycopg
import redis.asyncio as aioredis
import uvicorn
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DB_TIMEOUT = float(os.environ.get("APP_DB_TIMEOUT", "1.0"))
CACHE_TIMEOUT = float(os.environ.get("APP_CACHE_TIMEOUT", "0.5"))
CACHE_TTL_MS = int(float(os.environ.get("APP_CACHE_TTL", "3")) * 1000)
POOL_SIZE = 4
CACHE_KEY = "app:schedules"
Row = tuple[Any, ...]


class DatabaseDown(Exception):
    """The database did not answer in time or refused; the message is safe to show."""


class Pool:
    """A tiny connection pool: at most `size` connections, a broken one is dropped, not reused."""

    def __init__(self, dsn: str, size: int = POOL_SIZE) -> None:
        self.dsn = dsn
        self._idle: list[psycopg.AsyncConnection[Row]] = []
        self._slots = anyio.Semaphore(size)

    async def fetch(self, query: str, params: tuple[Any, ...] = ()) -> list[Row]:
        try:
            with anyio.fail_after(DB_TIMEOUT):
                async with self._slots:
                    conn = await self._take()
                    try:
                        cursor = await conn.execute(query, params)
                        rows = await cursor.fetchall()
                    except BaseException:
                        await _close(conn)
                        raise
                    self._idle.append(conn)
                    return rows
        except TimeoutError:
            raise DatabaseDown(f"no answer within {DB_TIMEOUT:g}s") from None
        except psycopg.Error as exc:
            raise DatabaseDown(type(exc).__name__) from None

    async def _take(self) -> psycopg.AsyncConnection[Row]:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and not conn.broken:
                return conn
        return await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=2)

    async def close(self) -> None:
        while self._idle:
            await _close(self._idle.pop())


async def _close(conn: psycopg.AsyncConnection[Row]) -> None:
    with anyio.move_on_after(0.5, shield=True):
        await conn.close()


class RequestLog(BaseHTTPMiddleware):
    """Logs every request with its timestamp and status; checks the bearer token when one is set."""

    def __init__(self, app: Any, log_path: str | None, token: str | None, leak: str | None) -> None:
        super().__init__(app)
        self.log_path, self.token, self.leak = log_path, token, leak

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        began = time.time()
        path = request.url.path
        if self.token and not path.startswith("/admin/"):
            if request.headers.get("authorization") != f"Bearer {self.token}":
                response: Response = JSONResponse({"error": "missing or wrong bearer token"}, 401)
            else:
                response = await call_next(request)
        else:
            response = await call_next(request)
        if self.log_path:
            level = "ERROR" if response.status_code >= 500 else "INFO"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(began)) + f".{int(began % 1 * 1000):03d}Z"
            took = (time.time() - began) * 1000
            line = f"{stamp} {level} {request.method} {path} {response.status_code} {took:.1f}ms"
            if self.leak:
                line += f" db={self.leak}"
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(line + "\n")
        return response


def build_app(dsn: str, redis_url: str) -> Starlette:
    pool = Pool(dsn)
    cache = aioredis.Redis.from_url(
        redis_url,
        socket_timeout=CACHE_TIMEOUT,
        socket_connect_timeout=CACHE_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
    state = {"failing": False, "ready": True}

    async def cache_get() -> bytes | None:
        try:
            with anyio.fail_after(CACHE_TIMEOUT):
                value = await cache.get(CACHE_KEY)
        except (TimeoutError, RedisError, OSError):
            return None
        return value if isinstance(value, bytes) else None

    async def cache_set(body: bytes) -> None:
        try:
            with anyio.fail_after(CACHE_TIMEOUT):
                await cache.set(CACHE_KEY, body, px=CACHE_TTL_MS)
        except (TimeoutError, RedisError, OSError):
            pass

    async def health(request: Request) -> JSONResponse:
        if state["failing"]:
            return JSONResponse({"status": "degraded", "reason": "failing on purpose"}, 503)
        checks = {"db": "ok", "cache": "ok"}
        try:
            await pool.fetch("SELECT 1")
        except DatabaseDown as exc:
            checks["db"] = str(exc)
        try:
            with anyio.fail_after(CACHE_TIMEOUT):
                await cache.ping()
        except (TimeoutError, RedisError, OSError) as exc:
            checks["cache"] = type(exc).__name__
        if checks == {"db": "ok", "cache": "ok"}:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "degraded", **checks}, 503)

    async def schedules(request: Request) -> JSONResponse:
        if state["failing"]:
            return JSONResponse({"error": "failing on purpose"}, 503)
        try:
            rows = await pool.fetch("SELECT id, name, starts_on FROM schedules ORDER BY id")
        except DatabaseDown as exc:
            cached = await cache_get()
            if cached is None:
                return JSONResponse({"error": f"database unavailable ({exc}) and nothing cached"}, 503)
            return JSONResponse({"source": "cache", "items": json.loads(cached)})
        items = [{"id": r[0], "name": r[1], "starts_on": _iso(r[2])} for r in rows]
        await cache_set(json.dumps(items).encode())
        return JSONResponse({"source": "db", "items": items})

    async def schedule(request: Request) -> JSONResponse:
        if state["failing"]:
            return JSONResponse({"error": "failing on purpose"}, 503)
        try:
            ident = int(request.path_params["id"])
        except ValueError:
            return JSONResponse({"error": "id must be a whole number"}, 400)
        try:
            rows = await pool.fetch("SELECT id, name, starts_on FROM schedules WHERE id = %s", (ident,))
        except DatabaseDown as exc:
            return JSONResponse({"error": f"database unavailable ({exc})"}, 503)
        if not rows:
            return JSONResponse({"error": f"no schedule {ident}"}, 404)
        row = rows[0]
        return JSONResponse({"id": row[0], "name": row[1], "starts_on": _iso(row[2])})

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ready" if state["ready"] else "not_ready"})

    async def set_ready(request: Request) -> JSONResponse:
        state["ready"] = bool((await request.json()).get("ready"))
        return JSONResponse({"ready": state["ready"]})

    async def failing(request: Request) -> JSONResponse:
        body = await request.json()
        state["failing"] = bool(body.get("failing"))
        return JSONResponse({"failing": state["failing"], "at": time.time()})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await pool.close()
            await cache.aclose()

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/api/v1/schedules", schedules),
            Route("/api/v1/schedules/{id}", schedule),
            Route("/ready", ready),
            Route("/admin/failing", failing, methods=["POST"]),
            Route("/admin/ready", set_ready, methods=["POST"]),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(
                RequestLog,
                log_path=os.environ.get("APP_LOG") or None,
                token=os.environ.get("APP_TOKEN") or None,
                leak=dsn if os.environ.get("APP_LOG_LEAKS") == "1" else None,
            )
        ],
    )


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description="the supervision tests' application under test")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build_app(os.environ["APP_DSN"], os.environ["APP_REDIS_URL"])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
