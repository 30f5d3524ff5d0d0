"""The report of an experiment whose proxy daemon died mid-window says the proxy was lost and when."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis
from mcp import Client

from chaos_mcp.config import parse_settings
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, settings_with_journal
from tests.fixtures.services import RedisServer
from tests.helpers import proxied_target_toml

pytestmark = pytest.mark.anyio
LATENCY_S = 0.4


def design() -> dict[str, Any]:
    return {
        "experiment_type": "infrastructure",
        "target_component": "cache",
        "scenario": "network_latency",
        "hypothesis": "When the cache is slow, the application should keep answering and recover.",
        "environment": "test",
        "blast_radius": {"scope": "through the proxy only", "targets": ["cache"]},
        "duration": "30s",
        "rollback_plan": ["Remove the toxic", "Verify latency is back to normal"],
        "parameters": {"latency_ms": int(LATENCY_S * 1000)},
    }


def ping_seconds(port: int) -> float:
    """An application client of its own, through the proxy: one PING, timed."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    began = time.perf_counter()
    client.ping()
    client.close()
    return time.perf_counter() - began


def daemon_version(proxy_port: int) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"http://127.0.0.1:{proxy_port}/version", timeout=2).json()
    return data


async def restarted(proxy_port: int, old_pid: int) -> dict[str, Any]:
    with anyio.fail_after(15):
        while True:
            try:
                version = daemon_version(proxy_port)
                if version["pid"] != old_pid:
                    return version
            except httpx.HTTPError:
                pass
            await anyio.sleep(0.05)


async def test_a_proxy_daemon_killed_mid_window_is_named_in_the_rollback_and_the_report(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer, proxy_port: int
) -> None:
    fields = f'kind = "redis"\nenvironment = "test"\nurl = "{own_redis.url}"\n'
    toml, listen = proxied_target_toml(proxy_port, "cache", fields, own_redis.port)
    settings = settings_with_journal(tmp_path, parse_settings(toml))
    async with Client(build_server(settings), mode="legacy") as client:
        experiment_id = result_data(await client.call_tool("design_experiment", design()))["experiment_id"]
        result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
        result_data(
            await client.call_tool(
                "inject_failure",
                {"experiment_id": experiment_id, "environment": "test", "target_component": "cache"},
            )
        )
        assert ping_seconds(listen) >= LATENCY_S
        before = daemon_version(proxy_port)
        killed_at = time.time()
        os.kill(before["pid"], signal.SIGKILL)
        after = await restarted(proxy_port, before["pid"])
        assert after["generation"] == before["generation"] + 1
        assert ping_seconds(listen) < LATENCY_S  # the restarted daemon carries the proxy, not the toxic
        rollback = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
        report = result_data(
            await client.call_tool("generate_report", {"experiment_id": experiment_id, "format": "markdown"})
        )["markdown"]
    [lost] = rollback["proxy_lost"]
    assert lost["proxy"] == "cache"
    lost_at = datetime.fromisoformat(lost["at"]).timestamp()
    assert killed_at - 1 <= lost_at <= after["started_at"] + 1
    assert f"restarted without its toxics at {lost['at']}" in rollback["note"]
    assert "the fault ended early" in report
    assert f"restarted without its toxics at {lost['at']}" in report
