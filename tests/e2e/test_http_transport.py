"""Streamable HTTP at /mcp: loopback by default, bearer token beyond it, DNS-rebinding protection."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client

from tests.helpers import free_port

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def start(state: Path, host: str, port: int, token: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("CHAOS_MCP_CONFIG", "CHAOS_MCP_TOKEN")}
    env["CHAOS_MCP_STATE_DIR"] = str(state)
    if token:
        env["CHAOS_MCP_TOKEN"] = token
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaos_mcp.cli",
            "serve",
            "--transport",
            "http",
            "--host",
            host,
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail("the HTTP server did not start")


@pytest.fixture
def loopback_server(state_dir: Path) -> Iterator[int]:
    port = free_port()
    process = start(state_dir, "127.0.0.1", port)
    wait_listening(port, process)
    yield port
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.anyio
async def test_an_mcp_client_lists_the_tools_over_streamable_http(loopback_server: int) -> None:
    async with Client(f"http://127.0.0.1:{loopback_server}/mcp", mode="legacy") as client:
        assert "design_experiment" in {t.name for t in (await client.list_tools()).tools}


def test_a_foreign_host_or_origin_header_is_refused(loopback_server: int) -> None:
    url = f"http://127.0.0.1:{loopback_server}/mcp"
    evil_host = httpx.post(url, json=INITIALIZE, headers=HEADERS | {"Host": "evil.example:80"})
    assert evil_host.status_code in (400, 403, 421)
    evil_origin = httpx.post(url, json=INITIALIZE, headers=HEADERS | {"Origin": "http://evil.example"})
    assert evil_origin.status_code in (400, 403)
    good = httpx.post(url, json=INITIALIZE, headers=HEADERS)
    assert good.status_code == 200


def test_binding_beyond_loopback_without_a_token_refuses_to_start(state_dir: Path) -> None:
    process = start(state_dir, "0.0.0.0", free_port())
    assert process.wait(timeout=30) == 2
    assert b"CHAOS_MCP_TOKEN" in (process.stderr.read() if process.stderr else b"")


def test_beyond_loopback_every_request_needs_the_bearer_token(state_dir: Path) -> None:
    port, token = free_port(), "t0ken-for-this-test-only-0123456789"
    process = start(state_dir, "0.0.0.0", port, token)
    try:
        wait_listening(port, process)
        url = f"http://127.0.0.1:{port}/mcp"
        assert httpx.post(url, json=INITIALIZE, headers=HEADERS).status_code == 401
        wrong = HEADERS | {"Authorization": "Bearer wrong"}
        assert httpx.post(url, json=INITIALIZE, headers=wrong).status_code == 401
        right = HEADERS | {"Authorization": f"Bearer {token}"}
        answer = httpx.post(url, json=INITIALIZE, headers=right)
        assert answer.status_code == 200 and token not in answer.text
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_prometheus_metrics_are_served_next_to_mcp(loopback_server: int) -> None:
    answer = httpx.get(f"http://127.0.0.1:{loopback_server}/metrics")
    assert answer.status_code == 200
    for name in (
        "chaos_experiments_total",
        "chaos_injections_total",
        "chaos_rollbacks_total",
        "chaos_active_experiments",
        "chaos_injection_duration_seconds",
    ):
        assert name in answer.text


@pytest.mark.anyio
async def test_sigterm_to_an_http_server_is_the_kill_switch(state_dir: Path) -> None:
    from chaos_mcp.config import embedded_default
    from chaos_mcp.engine.journal import Journal
    from chaos_mcp.schedule.api import schedule_metrics
    from tests.e2e.conftest import result_data
    from tests.helpers import valid_design

    def coverage() -> float:
        return schedule_metrics("schedule", embedded_default().targets["schedule"])["coverage_pct"]  # type: ignore[arg-type]

    port = free_port()
    process = start(state_dir, "127.0.0.1", port)
    try:
        wait_listening(port, process)
        async with Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as client:
            plan = result_data(await client.call_tool("design_experiment", valid_design(duration="60s")))
            ref = {"experiment_id": plan["experiment_id"]}
            result_data(await client.call_tool("measure_steady_state", ref))
            result_data(
                await client.call_tool(
                    "inject_failure", {**ref, "environment": "test", "target_component": "schedule"}
                )
            )
        assert coverage() < 100
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert coverage() == 100 and time.monotonic() - began < 1.5
    finally:
        if process.poll() is None:
            process.kill()
    journal = Journal(f"sqlite:///{state_dir / 'journal.sqlite3'}")
    assert journal.get_control("armed") == "false"
    journal.close()
