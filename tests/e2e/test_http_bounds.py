"""`serve --transport http` stays bounded and closed to strangers: unauthenticated floods and idle or
stalled connections keep its memory flat and are dropped, sessions are capped, /metrics has the same
Host/Origin checks as /mcp, and the bearer scheme is case-insensitive."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chaos_mcp.http import MAX_SESSIONS
from tests.e2e.test_http_transport import HEADERS, INITIALIZE, wait_listening
from tests.helpers import free_port

TOKEN = "t0ken-for-the-bounds-test-0123456789"
TIMEOUT = 1.0  # the request timeout this test gives the server


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(state_dir: Path) -> Iterator[tuple[int, int]]:
    """(port, pid) of a loopback `serve --transport http` with a token and a 1 s request timeout."""
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_MCP_CONFIG"}
    env |= {
        "CHAOS_MCP_STATE_DIR": str(state_dir),
        "CHAOS_MCP_TOKEN": TOKEN,
        "CHAOS_MCP_HTTP_REQUEST_TIMEOUT": str(TIMEOUT),
    }
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos_mcp.cli", "serve", "--transport", "http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(port, process)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=15)


async def flood(url: str, count: int, headers: dict[str, str]) -> list[int]:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        gate = asyncio.Semaphore(16)

        async def one() -> int:
            async with gate:
                return (await client.post(url, json=INITIALIZE, headers=headers)).status_code

        return list(await asyncio.gather(*(one() for _ in range(count))))


def test_two_thousand_unauthenticated_initializes_are_refused_and_memory_stays_flat(
    server: tuple[int, int],
) -> None:
    port, pid = server
    url = f"http://127.0.0.1:{port}/mcp"
    asyncio.run(flood(url, 100, HEADERS))  # warm up: allocator and imports settle
    before = rss_kib(pid)
    statuses = asyncio.run(flood(url, 2000, HEADERS))
    assert set(statuses) == {401}
    assert rss_kib(pid) - before < 15 * 1024, (before, rss_kib(pid))


def test_authenticated_sessions_are_capped(server: tuple[int, int]) -> None:
    port, pid = server
    url = f"http://127.0.0.1:{port}/mcp"
    authorized = HEADERS | {"Authorization": f"Bearer {TOKEN}"}
    asyncio.run(flood(url, 20, authorized))
    before = rss_kib(pid)
    statuses = asyncio.run(flood(url, MAX_SESSIONS * 4, authorized))
    assert statuses.count(200) <= MAX_SESSIONS - 20 and 200 not in statuses[-MAX_SESSIONS:]
    assert rss_kib(pid) - before < 40 * 1024, (before, rss_kib(pid))


def test_the_bearer_scheme_is_case_insensitive(server: tuple[int, int]) -> None:
    port, _ = server
    url = f"http://127.0.0.1:{port}/mcp"
    for scheme in ("bearer", "BEARER", "Bearer"):
        answer = httpx.post(url, json=INITIALIZE, headers=HEADERS | {"Authorization": f"{scheme} {TOKEN}"})
        assert answer.status_code == 200, (scheme, answer.status_code)
    assert (
        httpx.post(url, json=INITIALIZE, headers=HEADERS | {"Authorization": f"Basic {TOKEN}"}).status_code
        == 401
    )


def test_metrics_have_the_host_and_origin_checks_and_the_token(server: tuple[int, int]) -> None:
    port, _ = server
    url = f"http://127.0.0.1:{port}/metrics"
    authorized = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url, headers=authorized | {"Host": "evil.example"}).status_code == 421
    assert httpx.get(url, headers=authorized | {"Origin": "http://evil.example"}).status_code == 403
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=authorized).status_code == 200


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection (EOF or reset) before `seconds` pass."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_stalled_and_idle_connections_are_closed_after_the_request_timeout(server: tuple[int, int]) -> None:
    port, pid = server
    before = rss_kib(pid)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the rest of the headers never come
    half_body = socket.create_connection(("127.0.0.1", port))
    half_body.sendall(
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{".encode()
    )
    began = time.monotonic()
    try:
        assert closed_within(stalled, TIMEOUT + 5)
        assert closed_within(half_body, TIMEOUT + 5)
        assert all(closed_within(s, TIMEOUT + 5) for s in idle)
        assert time.monotonic() - began < TIMEOUT + 10  # generous: the machine may be busy
        assert rss_kib(pid) - before < 20 * 1024
    finally:
        for s in [*idle, stalled, half_body]:
            s.close()
    assert (
        httpx.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        ).status_code
        == 200
    )
