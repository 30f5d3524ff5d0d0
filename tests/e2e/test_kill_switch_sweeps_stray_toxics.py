"""The MCP kill switch also removes toxics added to the fault proxy outside any experiment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from chaos_mcp.config import load_settings
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, settings_with_journal
from tests.helpers import free_port
from tests.proxy.daemon_process import DaemonProcess, target_toml

pytestmark = pytest.mark.anyio


@pytest.fixture
def daemon(tmp_path: Path, state_dir: Path) -> Iterator[DaemonProcess]:
    api_port = free_port()
    config = f'[proxy]\napi = "http://127.0.0.1:{api_port}"\n' + target_toml("cache", free_port())
    running = DaemonProcess(tmp_path, config, port=api_port).start()
    yield running
    running.stop()


async def test_abort_all_over_mcp_removes_a_toxic_added_directly_to_the_daemon_and_lists_it(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    with daemon.client() as api:
        api.post("/proxies/cache/toxics", json={"type": "latency", "name": "by_hand"}).raise_for_status()
        api.post("/proxies/cache", json={"enabled": False}).raise_for_status()
    settings = settings_with_journal(tmp_path, load_settings(str(daemon.config)))
    async with Client(build_server(settings), mode="legacy") as client:
        result = result_data(await client.call_tool("abort_all", {"reason": "stray toxic test"}))
    assert result["removed_stray_toxics"] == ["cache/by_hand", "cache (re-enabled)"]
    with daemon.client() as api:
        assert api.get("/proxies/cache/toxics").json() == []
        assert api.get("/proxies/cache").json()["enabled"] is True
