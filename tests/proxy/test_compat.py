"""The unmodified toxiproxy-python client (PyPI) drives `chaos-mcp proxy --allow-unauthenticated`
(it cannot send the token): Toxiproxy API compatibility."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import redis
import toxiproxy
from toxiproxy.api import APIConsumer

from tests.proxy.daemon_process import DaemonProcess


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    config = '[proxy]\nallowed_upstreams = ["127.0.0.1:6379"]\n'
    running = DaemonProcess(tmp_path_factory.mktemp("compat"), config, "--allow-unauthenticated").start()
    yield running
    running.stop()


@pytest.fixture
def server(daemon: DaemonProcess) -> Iterator[toxiproxy.Toxiproxy]:
    APIConsumer.host, APIConsumer.port = "127.0.0.1", daemon.port
    client = toxiproxy.Toxiproxy()
    yield client
    client.destroy_all()


def _port(proxy: toxiproxy.proxy.Proxy) -> int:
    return int(proxy.listen.rpartition(":")[2])


def test_the_toxiproxy_client_sees_a_running_server_with_a_version(server: toxiproxy.Toxiproxy) -> None:
    assert server.running()
    assert b"version" in server.version()


def test_a_proxy_created_by_the_toxiproxy_client_relays_redis(server: toxiproxy.Toxiproxy) -> None:
    proxy = server.create(upstream="127.0.0.1:6379", name="compat_redis")
    assert proxy.enabled is True
    assert _port(proxy) > 0
    assert set(server.proxies()) == {"compat_redis"}
    assert redis.Redis(port=_port(proxy), socket_timeout=2).ping()


def test_creating_a_proxy_twice_raises_proxy_exists(server: toxiproxy.Toxiproxy) -> None:
    server.create(upstream="127.0.0.1:6379", name="twice")
    with pytest.raises(toxiproxy.exceptions.ProxyExists):
        toxiproxy.api.APIConsumer.post("/proxies", json={"name": "twice", "upstream": "127.0.0.1:6379"})


def test_toxics_added_listed_and_destroyed_through_the_client_change_latency(
    server: toxiproxy.Toxiproxy,
) -> None:
    proxy = server.create(upstream="127.0.0.1:6379", name="compat_latency")
    client = redis.Redis(port=_port(proxy), socket_timeout=5)
    client.ping()
    proxy.add_toxic(type="latency", attributes={"latency": 150})
    assert set(proxy.toxics()) == {"latency_downstream"}
    assert proxy.get_toxic("latency_downstream").attributes == {"latency": 150, "jitter": 0}
    started = time.perf_counter()
    client.ping()
    assert time.perf_counter() - started >= 0.15
    proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    started = time.perf_counter()
    client.ping()
    assert time.perf_counter() - started < 0.1


def test_an_unknown_toxic_type_raises_invalid_toxic(server: toxiproxy.Toxiproxy) -> None:
    proxy = server.create(upstream="127.0.0.1:6379", name="compat_invalid")
    with pytest.raises(toxiproxy.exceptions.InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")


def test_a_proxy_taken_down_refuses_connections_and_comes_back(server: toxiproxy.Toxiproxy) -> None:
    proxy = server.create(upstream="127.0.0.1:6379", name="compat_down")
    port = _port(proxy)
    with proxy.down():
        assert server.get_proxy("compat_down").enabled is False
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
    assert redis.Redis(port=port, socket_timeout=2).ping()


def test_populate_creates_proxies_and_reset_removes_toxics(server: toxiproxy.Toxiproxy) -> None:
    created = server.populate([{"name": "pop_a", "upstream": "127.0.0.1:6379", "listen": "127.0.0.1:0"}])
    assert [p.name for p in created] == ["pop_a"]
    proxy = server.get_proxy("pop_a")
    proxy.add_toxic(type="latency", attributes={"latency": 1000})
    proxy.disable()
    assert server.reset()
    proxy = server.get_proxy("pop_a")
    assert proxy.enabled is True
    assert proxy.toxics() == {}


def test_destroying_a_proxy_through_the_client_removes_it(server: toxiproxy.Toxiproxy) -> None:
    proxy = server.create(upstream="127.0.0.1:6379", name="compat_gone")
    assert server.destroy(proxy)
    assert server.get_proxy("compat_gone") is None
