"""A proxy cannot silently vanish: its supervisor restarts the daemon (proxies, no toxics) after a SIGKILL,
even when `serve` was killed first; a daemon left unsupervised is adopted by the next ensure_proxies."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis

from chaos_mcp.config import load_settings
from chaos_mcp.engine.proxies import ensure_proxies
from chaos_mcp.faults.network import ProxyToxicFault
from chaos_mcp.faults.proxy.supervisor import alive, read_status
from tests.helpers import free_port
from tests.proxy.conftest import wait_until
from tests.proxy.daemon_process import DaemonProcess, answers, target_toml


class Site:
    """A state dir and chaos.toml with one proxied Redis target, the daemon at `api_port`."""

    def __init__(self, tmp_path: Path) -> None:
        self.api_port, self.listen = free_port(), free_port()
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.config = tmp_path / "chaos.toml"
        self.config.write_text(
            f'[proxy]\napi = "http://127.0.0.1:{self.api_port}"\n' + target_toml("cache", self.listen)
        )
        self.env = {
            **os.environ,
            "CHAOS_MCP_STATE_DIR": str(self.state),
            "CHAOS_MCP_CONFIG": str(self.config),
        }

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def status(self) -> dict[str, Any]:
        """The supervisor's status file ({} before one is written)."""
        return read_status(self.api_port)

    def version(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.api_url}/version", timeout=2).json()
        return data

    def api(self) -> httpx.Client:
        token = (self.state / "proxy.token").read_text().strip()
        return httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=5)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    made = Site(tmp_path)
    monkeypatch.setenv("CHAOS_MCP_STATE_DIR", str(made.state))
    monkeypatch.setenv("CHAOS_MCP_CONFIG", str(made.config))
    yield made
    pids = []
    pids += [made.status().get("supervisor_pid"), made.status().get("daemon_pid")]
    with contextlib.suppress(httpx.HTTPError):
        pids.append(made.version()["pid"])
    for pid in filter(None, pids):  # the supervisor first, so that it cannot restart the daemon
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


class Witness(threading.Thread):
    """An application client through the proxy: a new connection and a PING every 20 ms, timed."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.ok: list[tuple[float, float]] = []  # (when, round trip)
        self.failed: list[float] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            started = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16) != b"+PONG\r\n":
                        raise OSError("no PONG")
                self.ok.append((time.monotonic(), time.monotonic() - started))
            except OSError:
                self.failed.append(time.monotonic())
            time.sleep(0.02)


def _sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def test_after_sigkill_of_serve_then_the_daemon_traffic_flows_again_through_a_fresh_daemon_without_toxics(
    site: Site,
) -> None:
    serve = subprocess.Popen(
        [sys.executable, "-m", "chaos_mcp.cli", "serve"],
        env=site.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: answers(site.api_url), timeout=20, what="serve started the proxy daemon")
        wait_until(lambda: "cache" in httpx.get(f"{site.api_url}/proxies").json(), what="proxy created")
        with site.api() as api:
            api.post("/proxies/cache/toxics", json={"type": "latency", "attributes": {"latency": 30}})
        witness = Witness(site.listen)
        witness.start()
        wait_until(lambda: len(witness.ok) >= 3, what="traffic through the proxy")
        first = site.version()
        assert first["generation"] == 0 and first["supervised"] is True
    finally:
        serve.kill()
        serve.wait(10)
    killed_at = time.monotonic()
    _sigkill(int(first["pid"]))
    wait_until(lambda: any(t > killed_at for t in witness.failed), timeout=5, what="the client cut off")
    failing_since = min(t for t in witness.failed if t > killed_at)
    wait_until(lambda: any(t > failing_since for t, _ in witness.ok), timeout=5, what="traffic again")
    witness.running = False
    back = min(t for t, _ in witness.ok if t > failing_since)
    assert back - killed_at < 3
    before = [rtt for t, rtt in witness.ok if t < killed_at]
    after = [rtt for t, rtt in witness.ok if t > back]
    assert min(before) >= 0.03 and (not after or max(after) < 0.03)  # the latency toxic is gone
    second = site.version()
    assert second["generation"] == 1 and second["pid"] != first["pid"] and second["supervised"] is True
    with site.api() as api:
        assert api.get("/proxies/cache").json()["listen"] == f"127.0.0.1:{site.listen}"
        assert api.get("/proxies/cache/toxics").json() == []
    restarts = site.status()["restarts"]
    assert [r["died_of"] for r in restarts] == ["signal 9"]
    log = (site.state / "proxy.log").read_text()
    warnings = [json.loads(line) for line in log.splitlines() if "proxy_daemon_restarted" in line]
    assert warnings and warnings[0]["level"] == "warning" and warnings[0]["generation"] == 1


def test_a_daemon_whose_supervisor_was_killed_keeps_serving_and_is_adopted_by_the_next_ensure_proxies(
    site: Site,
) -> None:
    settings = load_settings(str(site.config))
    anyio.run(ensure_proxies, settings)
    wait_until(lambda: site.version()["supervised"], what="supervised daemon")
    daemon_pid = site.version()["pid"]
    _sigkill(int(site.status()["supervisor_pid"]))
    wait_until(lambda: site.version()["supervised"] is False, what="daemon sees its supervisor gone")
    assert redis.Redis(port=site.listen, socket_timeout=2).ping()
    anyio.run(ensure_proxies, settings)
    wait_until(lambda: site.status()["daemon_pid"] == daemon_pid, what="a new supervisor adopts the daemon")
    _sigkill(daemon_pid)
    wait_until(lambda: answers(site.api_url) and site.version()["pid"] != daemon_pid, what="restarted")
    assert site.version()["generation"] == 1
    assert redis.Redis(port=site.listen, socket_timeout=2).ping()


def test_sigterm_to_the_supervisor_stops_the_daemon_for_good(site: Site) -> None:
    anyio.run(ensure_proxies, load_settings(str(site.config)))
    wait_until(lambda: answers(site.api_url), what="daemon up")
    status = site.status()
    os.kill(int(status["supervisor_pid"]), signal.SIGTERM)
    wait_until(lambda: not alive(int(status["supervisor_pid"])), timeout=10, what="supervisor gone")
    assert not alive(int(status["daemon_pid"]))
    assert not answers(site.api_url)


def test_a_daemon_the_operator_started_is_adopted_and_not_restarted_after_a_requested_stop(
    site: Site,
) -> None:
    operator = DaemonProcess(site.state.parent, site.config.read_text(), port=site.api_port).start()
    try:
        anyio.run(ensure_proxies, load_settings(str(site.config)))
        assert operator.process is not None
        wait_until(lambda: site.status().get("daemon_pid") == operator.process.pid, what="adopted")
        supervisor = int(site.status()["supervisor_pid"])
        assert site.version()["supervised"] is True
    finally:
        operator.stop()
    wait_until(lambda: not alive(supervisor), timeout=10, what="the adopting supervisor leaves")
    assert not answers(site.api_url)


def test_a_toxic_faults_revert_issued_while_the_daemon_restarts_succeeds_and_finds_it_gone(
    site: Site,
) -> None:
    anyio.run(ensure_proxies, load_settings(str(site.config)))
    fault = ProxyToxicFault(
        api_url=site.api_url, proxy="cache", toxic_type="latency", attributes={"latency": 100}
    )
    anyio.run(fault.inject)
    assert anyio.run(fault.verify)
    _sigkill(int(site.version()["pid"]))
    anyio.run(fault.revert)  # the daemon is down at this moment; revert waits for its restart
    assert anyio.run(fault.verify) is False
    assert site.version()["generation"] == 1
