"""The data path with busy-polling on (`--busy-poll-us 100`): toxics switch mid-stream, and it idles."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from chaos_mcp.faults.proxy import busypoll
from chaos_mcp.faults.proxy.daemon import ProxyDaemon, main
from tests.helpers import free_port
from tests.proxy.conftest import DaemonThread, add_toxic, api_client, make_proxy, wait_until


@pytest.fixture(scope="module")
def polling_daemon() -> Iterator[DaemonThread]:
    with DaemonThread(busy_poll_us=100) as running:
        yield running


@pytest.fixture
def polling_api(polling_daemon: DaemonThread) -> Iterator[httpx.Client]:
    yield from api_client(polling_daemon)


def _rtt(sock: socket.socket) -> float:
    started = time.perf_counter()
    sock.sendall(b"x")
    assert sock.recv(16) == b"x"
    return time.perf_counter() - started


def test_a_stream_keeps_every_byte_in_order_while_a_toxic_comes_and_goes(
    polling_api: httpx.Client, echo_server: str
) -> None:
    host, port = make_proxy(polling_api, "stream", echo_server)
    payload = bytes(i % 251 for i in range(4 << 20))
    received = bytearray()
    with socket.create_connection((host, port), timeout=10) as sock:

        def read_all() -> None:
            while len(received) < len(payload):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    return
                received.extend(chunk)

        reader = threading.Thread(target=read_all)
        reader.start()
        view = memoryview(payload)
        step = len(payload) // 8
        for index in range(8):
            sock.sendall(view[index * step : (index + 1) * step])
            if index % 2 == 0:
                add_toxic(polling_api, "stream", name="lag", type="latency", attributes={"latency": 2})
            else:
                assert polling_api.delete("/proxies/stream/toxics/lag").status_code == 204
        reader.join(20)
    assert len(received) == len(payload)
    assert received == payload


def test_a_toxic_takes_effect_on_the_next_request_of_a_live_connection(
    polling_api: httpx.Client, echo_server: str
) -> None:
    host, port = make_proxy(polling_api, "live", echo_server)
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert _rtt(sock) < 0.05
        add_toxic(polling_api, "live", name="lag", type="latency", attributes={"latency": 50})
        assert _rtt(sock) >= 0.05
        assert polling_api.delete("/proxies/live/toxics/lag").status_code == 204
        assert _rtt(sock) < 0.05


def test_the_poller_goes_idle_once_traffic_stops(
    polling_daemon: DaemonThread, polling_api: httpx.Client, echo_server: str
) -> None:
    host, port = make_proxy(polling_api, "idle", echo_server)
    with socket.create_connection((host, port), timeout=5) as sock:
        for _ in range(20):
            _rtt(sock)

        async def active() -> bool:
            return busypoll.poller().active

        wait_until(lambda: not polling_daemon.call(active()), timeout=2, what="busy-poller idle")


def test_both_sockets_of_a_connection_send_without_nagle_delay(
    polling_daemon: DaemonThread, polling_api: httpx.Client, echo_server: str
) -> None:
    host, port = make_proxy(polling_api, "nodelay", echo_server)
    with socket.create_connection((host, port), timeout=5) as sock:
        _rtt(sock)

        async def nodelay_flags() -> list[int]:
            proxy = polling_daemon.daemon.registry.get("nodelay")
            flags = []
            for link in proxy.links:
                for transport in (link.up.src, link.up.dst):
                    assert transport is not None
                    raw = transport.get_extra_info("socket")
                    flags.append(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            return flags

        flags = polling_daemon.call(nodelay_flags())
    assert len(flags) == 2
    assert all(flags)


def test_a_negative_busy_poll_window_is_refused_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--port", str(free_port()), "--busy-poll-us", "-5"])
    assert exited.value.code == 2
    assert "expected 0 (off) or a positive number of microseconds" in capsys.readouterr().err
    with pytest.raises(ValueError, match="busy_poll_us must be >= 0"):
        ProxyDaemon(busy_poll_us=-1)
