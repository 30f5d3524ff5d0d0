"""The application under test: a Starlette API with a PostgreSQL pool and a Redis cache.

    GET  /health                   200 {"status": "ok"} when the database and the cache answer,
                                   503 {"status": "degraded", "db": …, "cache": …} otherwise
    GET  /api/v1/schedules         rows of `schedules`, cached in Redis for CACHE_TTL seconds; when
                                   the database fails it serves the cached copy, else 503
    GET  /api/v1/schedules/{id}    one row (database only; 404 when absent, 503 when the DB fails)
    POST /admin/failing            {"failing": true|false}: every other route answers 503 while on
                                   (lets a benchmark decide the instant the API starts failing)

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
from starlette.requests import Request
from starlette.responses import JSONResponse
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


def build_app(dsn: str, redis_url: str) -> Starlette:
    pool = Pool(dsn)
    cache = aioredis.Redis.from_url(
        redis_url,
        socket_timeout=CACHE_TIMEOUT,
        socket_connect_timeout=CACHE_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
    state = {"failing": False}

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
            Route("/admin/failing", failing, methods=["POST"]),
        ],
        lifespan=lifespan,
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
