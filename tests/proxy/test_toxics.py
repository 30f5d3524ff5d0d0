"""Each toxic's effect, measured by a real client through the proxy against a real upstream."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
import redis

from tests.proxy.conftest import add_toxic, echo_roundtrip, make_proxy, metric, wait_until


def _connect(port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def test_latency_slows_an_existing_redis_connection_and_removal_restores_it(api: httpx.Client) -> None:
    _, port = make_proxy(api, "lat", "127.0.0.1:6379")
    client = redis.Redis(port=port, socket_timeout=5)
    client.ping()
    add_toxic(api, "lat", type="latency", attributes={"latency": 120, "jitter": 10})
    started = time.perf_counter()
    client.get("chaos:proxy:missing")
    assert time.perf_counter() - started >= 0.11
    assert api.delete("/proxies/lat/toxics/latency_downstream").status_code == 204
    started = time.perf_counter()
    client.get("chaos:proxy:missing")
    assert time.perf_counter() - started < 0.1


def test_latency_on_the_upstream_stream_delays_requests(api: httpx.Client) -> None:
    _, port = make_proxy(api, "latup", "127.0.0.1:6379")
    add_toxic(api, "latup", type="latency", stream="upstream", attributes={"latency": 100})
    client = redis.Redis(port=port, socket_timeout=5)
    started = time.perf_counter()
    client.ping()
    assert time.perf_counter() - started >= 0.1


def test_bandwidth_limits_the_transfer_rate(api: httpx.Client, echo_server: str) -> None:
    _, port = make_proxy(api, "bw", echo_server)
    add_toxic(api, "bw", type="bandwidth", attributes={"rate": 500})
    payload = b"x" * 150_000
    with _connect(port) as sock:
        started = time.perf_counter()
        assert echo_roundtrip(sock, payload) == payload
        elapsed = time.perf_counter() - started
    assert 0.25 <= elapsed < 2.0


def test_slow_close_holds_the_end_of_stream(api: httpx.Client, echo_server: str) -> None:
    _, port = make_proxy(api, "sc", echo_server)
    add_toxic(api, "sc", type="slow_close", attributes={"delay": 300})
    with _connect(port) as sock:
        assert echo_roundtrip(sock, b"hello") == b"hello"
        sock.shutdown(socket.SHUT_WR)
        started = time.perf_counter()
        assert sock.recv(10) == b""
        assert time.perf_counter() - started >= 0.28


def test_timeout_zero_holds_requests_without_answer(api: httpx.Client) -> None:
    _, port = make_proxy(api, "hold", "127.0.0.1:6379")
    add_toxic(api, "hold", type="timeout", attributes={"timeout": 0})
    with _connect(port, timeout=0.2) as sock:
        sock.sendall(b"PING\r\n")
        with pytest.raises(TimeoutError):
            sock.recv(10)


def test_timeout_closes_the_connection_after_the_given_time(api: httpx.Client, echo_server: str) -> None:
    _, port = make_proxy(api, "to", echo_server)
    add_toxic(api, "to", type="timeout", attributes={"timeout": 200})
    with _connect(port) as sock:
        started = time.perf_counter()
        sock.sendall(b"dropped")
        assert sock.recv(10) == b""
        assert 0.18 <= time.perf_counter() - started < 2


def test_reset_peer_resets_the_connection_on_data(api: httpx.Client, echo_server: str) -> None:
    _, port = make_proxy(api, "rst", echo_server)
    add_toxic(api, "rst", type="reset_peer", stream="upstream", attributes={"timeout": 50})
    with _connect(port) as sock:
        sock.sendall(b"ping")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)


def test_slicer_delivers_the_same_bytes_in_small_pieces(api: httpx.Client, echo_server: str) -> None:
    _, port = make_proxy(api, "slice", echo_server)
    add_toxic(
        api, "slice", type="slicer", attributes={"average_size": 100, "size_variation": 20, "delay": 2000}
    )
    payload = bytes(range(256)) * 8
    pieces: list[bytes] = []
    with _connect(port) as sock:
        sock.sendall(payload)
        while sum(map(len, pieces)) < len(payload):
            pieces.append(sock.recv(65536))
    assert b"".join(pieces) == payload
    assert len(pieces) >= 5
    assert max(map(len, pieces)) <= 1000


def test_limit_data_passes_the_limit_then_closes(api: httpx.Client, echo_server: str) -> None:
    _, port = make_proxy(api, "limit", echo_server)
    add_toxic(api, "limit", type="limit_data", attributes={"bytes": 100})
    received = b""
    with _connect(port) as sock:
        sock.sendall(b"y" * 1000)
        while chunk := sock.recv(4096):
            received += chunk
    assert received == b"y" * 100


def test_toxicity_zero_leaves_connections_untouched(api: httpx.Client) -> None:
    _, port = make_proxy(api, "tox0", "127.0.0.1:6379")
    add_toxic(api, "tox0", type="latency", toxicity=0.0, attributes={"latency": 500})
    client = redis.Redis(port=port, socket_timeout=5)
    started = time.perf_counter()
    client.ping()
    assert time.perf_counter() - started < 0.2


def test_removing_a_toxic_releases_held_data_without_loss(api: httpx.Client, echo_server: str) -> None:
    _, port = make_proxy(api, "release", echo_server)
    add_toxic(api, "release", type="latency", attributes={"latency": 60_000})
    with _connect(port) as sock:
        sock.sendall(b"held")
        wait_until(lambda: metric(api, "chaos_proxy_bytes_total", proxy="release", stream="upstream") >= 4)
        api.delete("/proxies/release/toxics/latency_downstream")
        started = time.perf_counter()
        assert echo_roundtrip(sock, b"") == b"" and sock.recv(10) == b"held"
        assert time.perf_counter() - started < 1


def test_a_down_toxic_refuses_connections_until_removed(api: httpx.Client) -> None:
    _, port = make_proxy(api, "downtox", "127.0.0.1:6379")
    client = redis.Redis(port=port, socket_timeout=2)
    client.ping()
    add_toxic(api, "downtox", type="down", name="down")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    api.delete("/proxies/downtox/toxics/down")
    wait_until(lambda: redis.Redis(port=port, socket_timeout=2).ping(), what="proxy back up")
