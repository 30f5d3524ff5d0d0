"""The native fast path: toxic-free connections leave Python and come back, with no byte lost.

Tests taking the `daemon` fixture run on both relays (native and python): the behaviour a
client sees must not depend on who copies the bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import shutil
import socket
import struct
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos_mcp.faults.proxy import fastpath
from tests.proxy.conftest import (
    DaemonThread,
    add_toxic,
    api_client,
    echo_roundtrip,
    half_close_server,
    make_proxy,
    metric,
    wait_until,
)

NATIVE_RELAYS = ["kernel", "native"] if fastpath.splices("kernel") else ["native"]


@pytest.fixture(scope="module", params=NATIVE_RELAYS)
def native(request: pytest.FixtureRequest) -> Iterator[DaemonThread]:
    """The daemon with the C relay thread, with and without the in-kernel splice."""
    if not fastpath.NATIVE_AVAILABLE:
        pytest.fail("the native relay was not built; install with a C compiler (cc) on PATH")
    with DaemonThread(relay=request.param) as running:
        yield running


@pytest.fixture
def native_api(native: DaemonThread) -> Iterator[httpx.Client]:
    yield from api_client(native)


def _native_active(daemon: DaemonThread) -> int:
    fast_path = daemon.daemon.registry.fast_path
    return 0 if fast_path is None else fast_path.active


def test_the_native_relay_is_built_where_a_compiler_is() -> None:
    if shutil.which("cc") or shutil.which("gcc"):
        assert fastpath.NATIVE_AVAILABLE, "reinstall the package: the native relay should have been built"


def test_toxic_free_connections_are_relayed_natively_and_counted(
    native: DaemonThread, native_api: httpx.Client, echo_server: str
) -> None:
    _, port = make_proxy(native_api, "fast", echo_server)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    for sock in socks:
        assert echo_roundtrip(sock, b"x" * 100_000) == b"x" * 100_000
    wait_until(lambda: metric(native_api, "chaos_proxy_connections_native", proxy="fast") == 3)
    assert metric(native_api, "chaos_proxy_bytes_total", proxy="fast", stream="upstream") == 300_000
    assert metric(native_api, "chaos_proxy_bytes_total", proxy="fast", stream="downstream") == 300_000
    for sock in socks:
        sock.close()
    wait_until(lambda: metric(native_api, "chaos_proxy_connections_active", proxy="fast") == 0)
    assert _native_active(native) == 0
    assert metric(native_api, "chaos_proxy_bytes_total", proxy="fast", stream="downstream") == 300_000


def test_a_toxic_takes_a_live_connection_back_and_removal_hands_it_over_again(
    native_api: httpx.Client, echo_server: str
) -> None:
    _, port = make_proxy(native_api, "back", echo_server)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert echo_roundtrip(sock, b"ping") == b"ping"
        wait_until(lambda: metric(native_api, "chaos_proxy_connections_native", proxy="back") == 1)
        add_toxic(native_api, "back", type="latency", attributes={"latency": 150})
        assert metric(native_api, "chaos_proxy_connections_native", proxy="back") == 0
        started = time.perf_counter()
        assert echo_roundtrip(sock, b"slow") == b"slow"
        assert time.perf_counter() - started >= 0.15
        assert native_api.delete("/proxies/back/toxics/latency_downstream").status_code == 204
        started = time.perf_counter()
        assert echo_roundtrip(sock, b"fast") == b"fast"
        assert time.perf_counter() - started < 0.1
        wait_until(lambda: metric(native_api, "chaos_proxy_connections_native", proxy="back") == 1)


class _Streamer:
    """Sends a seeded byte stream through the proxy to an echo server and checks every echoed byte."""

    def __init__(self, port: int, total: int, seed: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.total = total
        self.rng = random.Random(seed)
        self.sent = hashlib.sha256()
        self.received = hashlib.sha256()
        self.received_bytes = 0
        self.reader = threading.Thread(target=self._read)

    def _read(self) -> None:
        while self.received_bytes < self.total:
            chunk = self.sock.recv(65536)
            if not chunk:
                return
            self.received.update(chunk)
            self.received_bytes += len(chunk)

    def run(self) -> None:
        self.reader.start()
        sent = 0
        while sent < self.total:
            size = min(self.total - sent, self.rng.choice((1, 7, 512, 4096, 65536, 200_000)))
            chunk = self.rng.randbytes(size)
            self.sent.update(chunk)
            self.sock.sendall(chunk)
            sent += size
        self.reader.join(30)


Change = tuple[tuple[str, dict[str, int]], str, int]
TOXICS = st.sampled_from(
    [
        ("latency", {"latency": 1}),
        ("slicer", {"average_size": 300, "size_variation": 100, "delay": 0}),
        ("bandwidth", {"rate": 100_000}),
    ]
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32),
    changes=st.lists(
        st.tuples(TOXICS, st.sampled_from(["upstream", "downstream"]), st.integers(0, 30)), max_size=6
    ),
)
def test_bytes_arrive_whole_and_in_order_across_every_hand_over(
    daemon: DaemonThread, echo_server: str, seed: int, changes: list[Change]
) -> None:
    with httpx.Client(base_url=daemon.api_url, timeout=5) as api:
        _, port = make_proxy(api, "order", echo_server)
        fast_path = daemon.daemon.registry.fast_path
        adopted_before = 0 if fast_path is None else fast_path.adopted
        try:
            streamer = _Streamer(port, 3_000_000, seed)
            writer = threading.Thread(target=streamer.run)
            writer.start()
            if fast_path is not None:
                wait_until(lambda: fast_path.adopted > adopted_before)
            for (kind, attributes), stream, hold_ms in changes:
                add_toxic(api, "order", name="t", type=kind, stream=stream, attributes=attributes)
                time.sleep(hold_ms / 1000)
                assert api.delete("/proxies/order/toxics/t").status_code == 204
                time.sleep(hold_ms / 2000)
            writer.join(60)
            assert not writer.is_alive()
            assert streamer.received_bytes == streamer.total
            assert streamer.received.hexdigest() == streamer.sent.hexdigest()
            if fast_path is not None:
                wait_until(lambda: metric(api, "chaos_proxy_connections_native", proxy="order") == 1)
                assert fast_path.adopted - adopted_before >= 1 + min(1, len(changes))
            streamer.sock.close()
        finally:
            api.delete("/proxies/order")


def _read_to_end(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_half_closed_connection_still_carries_the_answer(daemon: DaemonThread) -> None:
    server, thread = half_close_server(0.0)
    with httpx.Client(base_url=daemon.api_url, timeout=5) as api, server:
        _, port = make_proxy(api, "half", f"127.0.0.1:{server.getsockname()[1]}")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"y" * 1_000_000)
            sock.shutdown(socket.SHUT_WR)
            assert _read_to_end(sock) == struct.pack("!Q", 1_000_000)
        thread.join(5)
        api.delete("/proxies/half")


def test_a_toxic_after_the_client_half_closed_applies_to_the_answer(
    native: DaemonThread, native_api: httpx.Client
) -> None:
    server, thread = half_close_server(0.4)
    with server:
        _, port = make_proxy(native_api, "halftoxic", f"127.0.0.1:{server.getsockname()[1]}")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"z" * 10_000)
            wait_until(lambda: metric(native_api, "chaos_proxy_connections_native", proxy="halftoxic") == 1)
            sock.shutdown(socket.SHUT_WR)
            time.sleep(0.1)
            started = time.perf_counter()
            add_toxic(native_api, "halftoxic", type="latency", attributes={"latency": 500})
            assert _read_to_end(sock) == struct.pack("!Q", 10_000)
            assert time.perf_counter() - started >= 0.5
        thread.join(5)


def test_an_upstream_reset_resets_the_client(daemon: DaemonThread) -> None:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(100)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with httpx.Client(base_url=daemon.api_url, timeout=5) as api, server:
        _, port = make_proxy(api, "rst", f"127.0.0.1:{server.getsockname()[1]}")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            time.sleep(0.05)
            sock.sendall(b"hello")
            with pytest.raises(ConnectionResetError):
                sock.recv(100)
        thread.join(5)
        wait_until(lambda: metric(api, "chaos_proxy_connections_active", proxy="rst") == 0)
        api.delete("/proxies/rst")


def test_asking_for_the_native_relay_where_it_was_not_built_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastpath, "NATIVE_AVAILABLE", False)

    async def start(mode: fastpath.RelayMode) -> fastpath.FastPath | None:
        return fastpath.start(mode)

    with pytest.raises(RuntimeError, match="reinstall with a C compiler, or use relay=auto"):
        asyncio.run(start("native"))
    assert asyncio.run(start("auto")) is None
    assert asyncio.run(start("python")) is None


def test_a_connection_both_sides_ended_while_native_drains_whole_after_a_toxic_takes_it_back(
    native_api: httpx.Client,
) -> None:
    """The client half-closes, the upstream answers 4 MB and closes, the client reads slowly:
    the relay still holds part of the answer, with both ends already passed on, when a toxic
    arrives. The rest must arrive whole, then a clean end of stream (not a reset)."""
    size = 4_000_000
    server = socket.create_server(("127.0.0.1", 0))
    answered = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while conn.recv(65536):
                pass
            conn.sendall(b"r" * size)
        answered.set()

    threading.Thread(target=serve, daemon=True).start()
    with server:
        _, port = make_proxy(native_api, "ended", f"127.0.0.1:{server.getsockname()[1]}")
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.settimeout(10)
            sock.sendall(b"request")
            wait_until(lambda: metric(native_api, "chaos_proxy_connections_native", proxy="ended") == 1)
            sock.shutdown(socket.SHUT_WR)
            assert answered.wait(5)
            time.sleep(0.2)
            add_toxic(native_api, "ended", type="latency", attributes={"latency": 10})
            assert len(_read_to_end(sock)) == size
