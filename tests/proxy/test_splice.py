"""The in-kernel splice: toxic-free connections relayed by a BPF sockmap, and every way out of it.

Whatever leaves the splice (a toxic, an end of stream, bulk traffic) must find every byte the
kernel already moved delivered first; a destination that stopped reading makes a toxic wait for
those bytes instead of overtaking them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

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


@pytest.fixture(scope="module")
def spliced() -> Iterator[DaemonThread]:
    if not fastpath.splices("kernel"):
        if os.geteuid() != 0:
            pytest.skip("the in-kernel splice needs root (or CAP_BPF + CAP_NET_ADMIN)")
        pytest.fail(
            "running as root but BPF sockmap is unavailable: the kernel lacks CONFIG_BPF_STREAM_PARSER?"
        )
    with DaemonThread(relay="kernel") as running:
        yield running


@pytest.fixture
def api(spliced: DaemonThread) -> Iterator[httpx.Client]:
    yield from api_client(spliced)


def _spliced(api: httpx.Client, proxy: str) -> float:
    return metric(api, "chaos_proxy_connections_spliced", proxy=proxy)


def test_a_toxic_free_connection_is_spliced_and_its_bytes_counted(
    api: httpx.Client, echo_server: str
) -> None:
    _, port = make_proxy(api, "splice", echo_server)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(100):
            assert echo_roundtrip(sock, b"q" * 1000) == b"q" * 1000
        wait_until(lambda: _spliced(api, "splice") == 1, what="connection spliced")
        assert metric(api, "chaos_proxy_bytes_total", proxy="splice", stream="upstream") == 100_000
        assert metric(api, "chaos_proxy_bytes_total", proxy="splice", stream="downstream") == 100_000
    wait_until(lambda: metric(api, "chaos_proxy_connections_active", proxy="splice") == 0)
    assert _spliced(api, "splice") == 0
    assert metric(api, "chaos_proxy_bytes_total", proxy="splice", stream="downstream") == 100_000


def test_bulk_traffic_leaves_the_splice_with_every_byte_in_order(api: httpx.Client, echo_server: str) -> None:
    _, port = make_proxy(api, "bulk", echo_server)
    total = 64 << 20
    block = os.urandom(1 << 20)
    received = hashlib.sha256()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert echo_roundtrip(sock, b"hello") == b"hello"
        wait_until(lambda: _spliced(api, "bulk") == 1, what="connection spliced")

        def read() -> None:
            got = 0
            while got < total:
                chunk = sock.recv(1 << 20)
                assert chunk
                received.update(chunk)
                got += len(chunk)

        reader = threading.Thread(target=read)
        reader.start()
        for _ in range(total // len(block)):
            sock.sendall(block)
        reader.join(30)
        assert not reader.is_alive()
        assert received.hexdigest() == hashlib.sha256(block * (total // len(block))).hexdigest()
        assert _spliced(api, "bulk") == 0  # moved by the relay thread now, still natively
        assert metric(api, "chaos_proxy_connections_native", proxy="bulk") == 1


def test_a_toxic_waits_for_spliced_bytes_a_stalled_reader_still_holds(api: httpx.Client) -> None:
    """The server stops reading; the client's bytes pile up in the kernel; a toxic arrives."""
    server = socket.create_server(("127.0.0.1", 0))
    reading = threading.Event()
    digest = hashlib.sha256()
    got: list[int] = [0]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"ready")
            reading.wait(10)
            while chunk := conn.recv(1 << 20):
                digest.update(chunk)
                got[0] += len(chunk)

    threading.Thread(target=serve, daemon=True).start()
    _, port = make_proxy(api, "stall", f"127.0.0.1:{server.getsockname()[1]}")
    sent = hashlib.sha256()
    payload = bytes(range(256)) * 4096  # 1 MiB
    with server, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert sock.recv(5) == b"ready"
        wait_until(lambda: _spliced(api, "stall") == 1, what="connection spliced")
        sock.setblocking(False)
        written = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # fill every buffer on the way to the stalled server
            try:
                written += sock.send(payload[written % len(payload) :])
            except BlockingIOError:
                time.sleep(0.05)
                try:
                    written += sock.send(payload[written % len(payload) :])
                except BlockingIOError:
                    break
        sock.setblocking(True)
        started = time.perf_counter()
        add_toxic(api, "stall", type="latency", stream="upstream", attributes={"latency": 10})
        assert time.perf_counter() - started < 1, "the control API waited for the stalled reader"
        assert metric(api, "chaos_proxy_connections_native", proxy="stall") == 1  # still draining
        for _ in range(10):  # the retries do not hold the event loop
            started = time.perf_counter()
            assert api.get("/version").status_code == 200
            assert time.perf_counter() - started < 0.05
        reading.set()
        wait_until(
            lambda: metric(api, "chaos_proxy_connections_native", proxy="stall") == 0, what="taken back"
        )
        tail = b"--end--"
        sock.sendall(tail)
        sock.shutdown(socket.SHUT_WR)
        whole = (payload * (written // len(payload) + 1))[:written] + tail
        sent.update(whole)
        wait_until(lambda: got[0] == len(whole), timeout=10, what="every byte delivered")
        assert digest.hexdigest() == sent.hexdigest()


def test_an_end_of_stream_leaves_the_splice_and_carries_the_answer(api: httpx.Client) -> None:
    server, thread = half_close_server(0.0)
    _, port = make_proxy(api, "eos", f"127.0.0.1:{server.getsockname()[1]}")
    with server, socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"a" * 3000)
        wait_until(lambda: _spliced(api, "eos") == 1, what="connection spliced")
        sock.sendall(b"b" * 7000)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(100):
            answer += chunk
        assert answer == struct.pack("!Q", 10_000)
    thread.join(5)


def _pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        near = socket.create_connection(listener.getsockname())
        far, _ = listener.accept()
    return near, far


def test_a_socket_read_in_part_joins_without_sending_the_read_bytes_again() -> None:
    """The kernel hands the verdict whole segments; joining must not replay bytes already read."""
    if not fastpath.splices("kernel"):
        pytest.skip("no in-kernel splice here")
    relay = fastpath.Relay(kernel=True)
    try:
        client, proxy_client = _pair()
        proxy_upstream, server = _pair()
        data = os.urandom(200_000)
        client.sendall(data)
        time.sleep(0.05)
        first = proxy_client.recv(1000)  # Python read part of the first segment
        for sock in (proxy_client, proxy_upstream):
            sock.setblocking(False)
        handle = relay.adopt(proxy_client.fileno(), proxy_upstream.fileno(), kernel=True)
        assert relay.splicing(handle)
        server.settimeout(5)
        received = b""
        while len(received) < len(data) - len(first):
            chunk = server.recv(1 << 20)
            assert chunk
            received += chunk
        server.setblocking(False)
        time.sleep(0.05)
        with pytest.raises(BlockingIOError):
            received += server.recv(1 << 20)
        assert first + received == data
        assert relay.release(handle, force=True) is not None
        for sock in (client, proxy_client, proxy_upstream, server):
            sock.close()
    finally:
        relay.close()


def test_a_client_that_writes_before_it_reads_is_not_blocked_after_bulk_leaves_the_splice(
    api: httpx.Client,
) -> None:
    """The server floods a client that is still writing; the client's bytes must keep flowing."""
    server = socket.create_server(("127.0.0.1", 0))
    got = [0]

    def serve() -> None:
        conn, _ = server.accept()
        conn.sendall(b"ready")

        def read() -> None:
            with contextlib.suppress(OSError):  # the client closes first
                while chunk := conn.recv(65536):
                    got[0] += len(chunk)

        threading.Thread(target=read, daemon=True).start()
        time.sleep(0.3)
        with contextlib.suppress(OSError):
            for _ in range(64):
                conn.sendall(b"x" * (1 << 20))

    threading.Thread(target=serve, daemon=True).start()
    _, port = make_proxy(api, "pipeline", f"127.0.0.1:{server.getsockname()[1]}")
    with server, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert sock.recv(5) == b"ready"
        wait_until(lambda: _spliced(api, "pipeline") == 1, what="connection spliced")
        time.sleep(1.0)  # the flood fills every buffer towards the client, which does not read
        sock.sendall(b"y" * 100_000)
        wait_until(lambda: got[0] == 100_000, timeout=5, what="the client's bytes at the server")


def test_idle_request_response_connections_all_stay_spliced(api: httpx.Client, echo_server: str) -> None:
    _, port = make_proxy(api, "many", echo_server)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
    errors: list[str] = []

    def ping_pong(sock: socket.socket) -> None:
        for _ in range(100):
            if echo_roundtrip(sock, b"z" * 200) != b"z" * 200:
                errors.append("short echo")
                return

    threads = [threading.Thread(target=ping_pong, args=(sock,)) for sock in socks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    wait_until(lambda: _spliced(api, "many") == 50, what="every connection spliced")
    for sock in socks:
        sock.close()


def test_a_server_that_stops_reading_stops_the_client_as_tcp_would(api: httpx.Client) -> None:
    """The kernel's splice has no backpressure of its own: the relay stops a source whose bytes pile up."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    _, port = make_proxy(api, "stalled", f"127.0.0.1:{server.getsockname()[1]}")
    with server, socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"hello")
        wait_until(lambda: _spliced(api, "stalled") == 1, what="connection spliced")
        sock.settimeout(0.05)
        sent, deadline = 0, time.monotonic() + 2
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                sent += sock.send(b"p" * 65536)
        assert sent < 64 << 20, f"{sent >> 20} MiB accepted for a server that reads nothing"
        for conn in accepted:
            conn.close()
