"""An in-memory MCP client on build_server + register_extras, and a real experiment in its journal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import Client

from chaos_mcp.engine.core import Engine
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, settings_with_journal
from tests.helpers import valid_design


@dataclass
class Session:
    client: Client
    engine: Engine


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def session(tmp_path: Path, state_dir: Path) -> AsyncIterator[Session]:
    settings = settings_with_journal(tmp_path)
    server = build_server(settings)
    # A second engine on the same journal, for tests that look behind the server's back.
    async with Engine.running(settings) as engine, Client(server, mode="legacy") as client:  # type: ignore[arg-type]
        yield Session(client, engine)


async def run_experiment(client: Client) -> str:
    design = valid_design(duration="10s", success_criteria=["coverage_pct >= 100%", "recovery_time < 2 min"])
    experiment_id = str(result_data(await client.call_tool("design_experiment", design))["experiment_id"])
    ref = {"experiment_id": experiment_id}
    result_data(await client.call_tool("measure_steady_state", ref))
    result_data(
        await client.call_tool(
            "inject_failure", {**ref, "environment": "test", "target_component": "schedule"}
        )
    )
    result_data(await client.call_tool("measure_steady_state", ref))
    result_data(await client.call_tool("rollback", ref))
    return experiment_id
