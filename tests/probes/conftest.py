"""Real local servers for the probe tests: a small Starlette app under uvicorn, a server
that accepts connections and never answers, and a port nobody listens on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import anyio
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def degraded(request: Request) -> Response:
    return JSONResponse({"status": "degraded"})


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def slow(request: Request) -> Response:
    await anyio.sleep(float(request.query_params.get("s", "0.25")))
    return PlainTextResponse("slow")


async def fail(request: Request) -> Response:
    return PlainTextResponse("boom", status_code=500)


async def moved(request: Request) -> Response:
    return Response(status_code=302, headers={"location": "/ok"})


def build_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/health", health),
            Route("/degraded", degraded),
            Route("/ok", ok),
            Route("/slow", slow),
            Route("/fail", fail),
            Route("/moved", moved),
        ]
    )


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class LocalServer:
    """uvicorn serving an ASGI app (default `build_app()`) in a thread on a free port of 127.0.0.1."""

    def __init__(self, app: Starlette | None = None) -> None:
        self.sock = listening_socket()
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app or build_app(), log_level="error", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        limit = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > limit or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session")
def http_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    sock = listening_socket()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound once to pick it, then released)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port
