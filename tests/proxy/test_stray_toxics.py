"""Toxics added outside any experiment are seen and removed by `recover`, the kill switch and the sweep."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from chaos_mcp.config import load_settings
from chaos_mcp.engine.journal import Journal
from chaos_mcp.engine.proxies import sweep_stray_toxics
from tests.helpers import free_port
from tests.proxy.daemon_process import DaemonProcess, target_toml


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaemonProcess]:
    api_port = free_port()
    config = f'[proxy]\napi = "http://127.0.0.1:{api_port}"\n' + target_toml("cache", free_port())
    running = DaemonProcess(tmp_path, config, port=api_port).start()
    monkeypatch.setenv("CHAOS_MCP_STATE_DIR", str(running.state))
    yield running
    running.stop()


def _toxics(daemon: DaemonProcess) -> list[str]:
    with daemon.client() as api:
        return [t["name"] for t in api.get("/proxies/cache/toxics").json()]


def test_the_sweep_removes_toxics_no_active_fault_accounts_for_and_re_enables_proxies(
    daemon: DaemonProcess,
) -> None:
    journal = Journal(f"sqlite:///{daemon.state / 'journal.sqlite3'}")
    record = {
        "kind": "proxy.toxic",
        "fields": {"api_url": daemon.api_url, "proxy": "cache", "toxic_name": "ours"},
    }
    journal.write_ahead("fault-1", "exp-1", 0, record, time.time() + 60)
    with daemon.client() as api:
        api.post("/proxies/cache/toxics", json={"type": "latency", "name": "ours"}).raise_for_status()
        api.post("/proxies/cache/toxics", json={"type": "timeout", "name": "stray"}).raise_for_status()
        api.post("/proxies/cache", json={"enabled": False}).raise_for_status()
    removed = anyio.run(sweep_stray_toxics, load_settings(str(daemon.config)), journal)
    assert removed == ["cache/stray", "cache (re-enabled)"]
    assert _toxics(daemon) == ["ours"]
    with daemon.client() as api:
        assert api.get("/proxies/cache").json()["enabled"] is True
    journal.close()


@pytest.mark.parametrize("command", [["recover"], ["abort", "--reason", "test"]])
def test_recover_and_the_kill_switch_remove_a_stray_toxic_and_say_so(
    daemon: DaemonProcess, command: list[str]
) -> None:
    Journal(f"sqlite:///{daemon.state / 'journal.sqlite3'}").close()  # recover refuses a missing journal
    with daemon.client() as api:
        api.post("/proxies/cache/toxics", json={"type": "latency", "name": "by_hand"}).raise_for_status()
    result = subprocess.run(
        [sys.executable, "-m", "chaos_mcp.cli", *command],
        env=daemon.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "removed 1 toxic(s) added outside any experiment: cache/by_hand" in result.stdout, result
    assert _toxics(daemon) == []
