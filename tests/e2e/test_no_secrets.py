"""No configured secret in any tool result, report or log line of a real server session."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.e2e.conftest import result_data
from tests.fixtures.services import PostgresDatabase
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio
TOKEN = "tok-3b9f0c1d-secret-token-value"


def dump(result: Any) -> str:
    return json.dumps([getattr(c, "text", "") for c in result.content]) + json.dumps(
        result.structured_content
    )


async def test_no_secret_reaches_a_tool_result_a_report_or_a_log_line(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    config = tmp_path / "chaos.toml"
    config.write_text(
        f'[targets.schedule]\nkind = "schedule"\nenvironment = "test"\n\n'
        f'[targets.appdb]\nkind = "postgres"\nenvironment = "test"\ndsn = "{own_postgres.app_dsn}"\n'
    )
    log = tmp_path / "server.log"
    env = {**os.environ, "CHAOS_MCP_STATE_DIR": str(state_dir), "CHAOS_MCP_TOKEN": TOKEN}
    command = (
        f'exec "{sys.executable}" -m chaos_mcp.cli --log-level DEBUG --config "{config}" serve 2>>"{log}"'
    )
    outputs: list[str] = []
    async with Client(
        StdioServerParameters(command="sh", args=["-c", command], env=env), mode="legacy"
    ) as client:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("list_targets", {}),
            ("design_experiment", {}),
            ("design_experiment", valid_design(target_component="appdb", hypothesis=own_postgres.app_dsn)),
            ("design_experiment", valid_design(rollback_plan=[f"use {own_postgres.app_dsn}"])),
        ]
        for name, arguments in calls:
            outputs.append(dump(await client.call_tool(name, arguments)))
        plan = result_data(
            await client.call_tool(
                "design_experiment",
                valid_design(
                    blast_radius={"scope": "program and its database", "targets": ["schedule", "appdb"]}
                ),
            )
        )
        ref = {"experiment_id": plan["experiment_id"]}
        for name, arguments in [
            ("measure_steady_state", ref),
            ("inject_failure", {**ref, "environment": "test", "target_component": "schedule"}),
            ("measure_steady_state", ref),
            ("rollback", ref),
            ("generate_report", {**ref, "format": "html"}),
            ("generate_report", {"since": "2026-01-01", "format": "json"}),
            ("get_experiment", ref),
            ("list_experiments", {}),
            ("abort_all", {"reason": "end of the secret scan"}),
        ]:
            outputs.append(dump(await client.call_tool(name, arguments)))
        for uri in (
            "chaos://targets",
            f"chaos://experiments/{plan['experiment_id']}",
            f"chaos://experiments/{plan['experiment_id']}/report",
        ):
            outputs.append(str(await client.read_resource(uri)))
    logs = log.read_text()
    assert logs.strip(), "the server logged nothing; the scan would prove nothing"
    everything = "\n".join(outputs) + logs
    assert own_postgres.password not in everything
    assert TOKEN not in everything
    assert "Traceback" not in "\n".join(outputs)
