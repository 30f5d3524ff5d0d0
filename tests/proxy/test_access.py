"""The control API is not a back door: token, loopback listens, declared upstreams, bounded expiry."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import redis

from chaos_mcp.faults.proxy.client import ProxyClient, ToxicSpec
from tests.helpers import free_port
from tests.proxy.daemon_process import DaemonProcess, target_toml


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    config = target_toml("cache", free_port())
    config += '[proxy]\nallowed_upstreams = ["127.0.0.1:5432"]\n[policy]\nmax_duration = "2m"\n'
    running = DaemonProcess(tmp_path_factory.mktemp("access"), config).start()
    yield running
    running.stop()


@pytest.fixture
def daemon(shared_daemon: DaemonProcess) -> Iterator[DaemonProcess]:
    """The module's daemon; afterwards only the `cache` proxy is left, with no toxics."""
    yield shared_daemon
    with shared_daemon.client() as client:
        client.post("/reset").raise_for_status()
        for name in client.get("/proxies").json():
            if name != "cache":
                client.delete(f"/proxies/{name}").raise_for_status()


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    return message


def test_the_token_file_is_created_0600_at_first_start_and_kept_across_restarts(tmp_path: Path) -> None:
    first = DaemonProcess(tmp_path, target_toml("cache", free_port())).start()
    token = first.token
    first.stop()
    assert stat.S_IMODE((first.state / "proxy.token").stat().st_mode) == 0o600
    assert len(token) >= 32
    second = DaemonProcess(tmp_path, target_toml("cache", free_port())).start()
    try:
        assert second.token == token
    finally:
        second.stop()


def test_changes_without_the_token_are_401_and_change_nothing(daemon: DaemonProcess) -> None:
    for token in ("", "not-the-token"):
        with daemon.client(token) as client:
            message = _error(client.post("/proxies/cache/toxics", json={"type": "latency"}), 401)
            assert "Authorization: Bearer" in message and "X-Chaos-Proxy-Token" in message
            _error(client.post("/proxies/cache", json={"enabled": False}), 401)
            _error(client.delete("/proxies/cache"), 401)
            _error(client.post("/reset"), 401)
            assert client.get("/proxies/cache").json()["enabled"] is True
            assert client.get("/proxies/cache/toxics").json() == []
    assert daemon.token not in daemon.log()


def test_the_token_works_as_bearer_in_any_case_or_as_its_own_header(daemon: DaemonProcess) -> None:
    for header in (
        {"Authorization": f"bearer {daemon.token}"},
        {"Authorization": f"BEARER {daemon.token}"},
        {"X-Chaos-Proxy-Token": daemon.token},
    ):
        response = httpx.post(
            f"{daemon.api_url}/proxies/cache/toxics", json={"type": "latency"}, headers=header
        )
        assert response.status_code == 200, response.text
        assert (
            httpx.delete(
                f"{daemon.api_url}/proxies/cache/toxics/latency_downstream", headers=header
            ).status_code
            == 204
        )


def test_the_servers_client_reads_the_same_token_file(
    daemon: DaemonProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOS_MCP_STATE_DIR", str(daemon.state))

    async def add_and_remove() -> list[dict[str, object]]:
        async with ProxyClient(daemon.api_url) as client:
            await client.add_toxic("cache", ToxicSpec(type="latency", name="by_server", ttl=30))
            listed = await client.toxics("cache")
            await client.remove_toxic("cache", "by_server")
            return listed

    assert [t["name"] for t in anyio.run(add_and_remove)] == ["by_server"]


def test_a_listen_address_off_loopback_is_403_naming_what_is_accepted(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        body = {"name": "exposed", "listen": "0.0.0.0:0", "upstream": "127.0.0.1:6379"}
        message = _error(client.post("/proxies", json=body), 403)
        assert "loopback" in message and "allowed_listen_hosts" in message
        _error(client.post("/proxies/cache", json={"listen": "0.0.0.0:0"}), 403)
        assert "exposed" not in client.get("/proxies").json()
        assert client.get("/proxies/cache").json()["listen"].startswith("127.0.0.1:")


def test_an_undeclared_upstream_is_403_naming_the_declared_ones(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        body = {"name": "relay", "listen": "127.0.0.1:0", "upstream": "198.51.100.7:22"}
        message = _error(client.post("/proxies", json=body), 403)
        assert "127.0.0.1:6379" in message and "127.0.0.1:5432" in message and "allowed_upstreams" in message
        _error(client.post("/proxies/cache", json={"upstream": "198.51.100.7:22"}), 403)
        _error(client.post("/populate", json=[{**body, "name": "pop"}]), 403)
        assert client.get("/proxies/cache").json()["upstream"] == "127.0.0.1:6379"
        allowed = {"name": "pg", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5432"}
        assert client.post("/proxies", json=allowed).status_code == 201


def test_every_toxic_expires_within_the_configured_longest_experiment(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        toxic = client.post("/proxies/cache/toxics", json={"type": "latency", "name": "bare"}).json()
        assert 115 < toxic["expires_at"] - time.time() <= 121
        week = time.time() + 7 * 24 * 3600
        message = _error(
            client.post("/proxies/cache/toxics", json={"type": "latency", "expires_at": week}), 400
        )
        assert "120" in message and "longest allowed experiment" in message
        _error(client.post("/proxies/cache/toxics", json={"type": "latency", "ttl": 121}), 400)
        _error(client.post("/proxies/cache/toxics/bare", json={"ttl": 3600}), 400)
        assert [t["name"] for t in client.get("/proxies/cache/toxics").json()] == ["bare"]


def test_allow_unauthenticated_serves_plain_toxiproxy_clients_and_warns_at_start(tmp_path: Path) -> None:
    listen = free_port()
    daemon = DaemonProcess(tmp_path, target_toml("cache", listen), "--allow-unauthenticated").start()
    try:
        response = httpx.post(f"{daemon.api_url}/proxies/cache/toxics", json={"type": "latency"})
        assert response.status_code == 200, response.text
        assert httpx.get(f"{daemon.api_url}/version").json()["token_required"] is False
        assert redis.Redis(port=listen, socket_timeout=3).ping()
    finally:
        daemon.stop()
    warnings = [json.loads(line) for line in daemon.log().splitlines() if "proxy_unauthenticated" in line]
    assert warnings and warnings[0]["level"] == "warning"
    assert not (daemon.state / "proxy.token").exists()
