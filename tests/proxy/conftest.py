"""Fixtures: the proxy daemon on its own uvloop thread, and small real upstreams on loopback.

Test code runs real, blocking clients (redis-py, httpx, sockets, the unmodified
toxiproxy-python library) in the main thread while the daemon serves from its own loop.
"""

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import uvloop

from chaos_mcp.faults.proxy.daemon import ProxyDaemon
from chaos_mcp.faults.proxy.fastpath import NATIVE_AVAILABLE, RelayMode, splices


class DaemonThread:
    """A ProxyDaemon on port 0, running on a uvloop in a background thread."""

    def __init__(self, busy_poll_us: float = 0, relay: RelayMode = "auto") -> None:
        self.loop = uvloop.new_event_loop()
        self.daemon = ProxyDaemon(port=0, busy_poll_us=busy_poll_us, relay=relay)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> DaemonThread:
        self.thread.start()
        self.call(self.daemon.start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.call(self.daemon.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def call(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def api_url(self) -> str:
        return self.daemon.api_url

    @property
    def port(self) -> int:
        return self.daemon.port


RELAYS = (["kernel"] if splices("kernel") else []) + (["native"] if NATIVE_AVAILABLE else []) + ["python"]


@pytest.fixture(scope="session", params=RELAYS)
def daemon(request: pytest.FixtureRequest) -> Iterator[DaemonThread]:
    """The daemon once per relay this machine has: kernel splice, native thread, Python."""
    with DaemonThread(relay=request.param) as running:
        yield running


def api_client(daemon: DaemonThread) -> Iterator[httpx.Client]:
    """A control-API client of `daemon`; every proxy is deleted afterwards (yield from a fixture)."""
    with httpx.Client(base_url=daemon.api_url, timeout=5) as client:
        yield client
        for name in client.get("/proxies").json():
            client.delete(f"/proxies/{name}")


@pytest.fixture
def api(daemon: DaemonThread) -> Iterator[httpx.Client]:
    """A control-API client; every proxy is deleted after the test."""
    yield from api_client(daemon)


def echo_roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    """Send `payload` to an echo upstream and read back as many bytes (fewer if the stream ends)."""
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def half_close_server(delay: float) -> tuple[socket.socket, threading.Thread]:
    """Reads to end of stream, waits `delay`, answers with the byte count, closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            count = 0
            while chunk := conn.recv(65536):
                count += len(chunk)
            time.sleep(delay)
            conn.sendall(struct.pack("!Q", count))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def make_proxy(api: httpx.Client, name: str, upstream: str) -> tuple[str, int]:
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream})
    assert response.status_code == 201, response.text
    host, _, port = response.json()["listen"].rpartition(":")
    return host, int(port)


def add_toxic(api: httpx.Client, proxy: str, **toxic: Any) -> dict[str, Any]:
    response = api.post(f"/proxies/{proxy}/toxics", json=toxic)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.005)


def metric(api: httpx.Client, name: str, **labels: str) -> float:
    """The value of one sample from GET /metrics."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in api.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{{{wanted}}}")


# ---- upstreams ---------------------------------------------------------------------------
class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class _Threaded(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A TCP echo server; its address as host:port."""
    server = _Threaded(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"status": "ok"})
        elif self.path.startswith("/api/v1/schedules"):
            self._answer(200, {"schedules": [1, 2, 3]})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        self._answer(200, {"received": len(self.rfile.read(length))})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    """A small keep-alive HTTP/1.1 API with /health and /api/v1/schedules; host:port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
