"""`chaos-mcp serve` as a real subprocess: the SDK's stdio client and the MCP Inspector CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from chaos_mcp.contract import REQUIRED_FIELDS
from tests.e2e.conftest import result_data, result_text
from tests.helpers import valid_design

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def serve_env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_MCP_CONFIG"}
    env["CHAOS_MCP_STATE_DIR"] = str(state)
    return env


@pytest.mark.anyio
async def test_the_stdio_client_runs_a_design_and_a_baseline_against_chaos_mcp_serve(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "chaos_mcp.cli", "serve"], env=serve_env(tmp_path)
    )
    async with Client(params, mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "design_experiment" in names
        refused = await client.call_tool("design_experiment", {})
        assert refused.is_error and all(f in result_text(refused) for f in REQUIRED_FIELDS)
        plan = result_data(await client.call_tool("design_experiment", valid_design()))
        baseline = result_data(
            await client.call_tool("measure_steady_state", {"experiment_id": plan["experiment_id"]})
        )
        assert baseline["steady"] is True
    assert (tmp_path / "journal.sqlite3").exists()


def inspector(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail("npx (Node.js) is needed for the MCP Inspector CLI; .ci/run installs it")
    command = [
        npx,
        "-y",
        INSPECTOR,
        "--cli",
        "-e",
        f"CHAOS_MCP_STATE_DIR={tmp_path}",
        sys.executable,
        "-m",
        "chaos_mcp.cli",
        "serve",
        *args,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=240,
        env=serve_env(tmp_path),
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.inspector
def test_the_inspector_cli_lists_the_tools_with_the_required_context(tmp_path: Path) -> None:
    done = inspector(tmp_path, "--method", "tools/list")
    assert done.returncode == 0, done.stderr[-2000:]
    tools = {t["name"]: t for t in json.loads(done.stdout)["tools"]}
    assert sorted(tools["design_experiment"]["inputSchema"]["required"]) == sorted(REQUIRED_FIELDS)


@pytest.mark.inspector
def test_the_inspector_cli_sees_a_validation_failure_as_a_tool_error(tmp_path: Path) -> None:
    done = inspector(
        tmp_path,
        "--method",
        "tools/call",
        "--tool-name",
        "design_experiment",
        "--tool-arg",
        "hypothesis=TBD",
        "--tool-arg",
        "duration=2 hours",
    )
    assert done.returncode == 5, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "hypothesis" in done.stdout and "duration" in done.stdout and "rollback_plan" in done.stdout
