"""The kill switch from a shell and by signal, and the on_disconnect policy, against a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from chaos_mcp.config import embedded_default
from chaos_mcp.engine.journal import Journal
from chaos_mcp.schedule.api import schedule_metrics
from tests.e2e.conftest import result_data, result_text
from tests.e2e.serving import serve_params, server_pid
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio


def coverage(state: Path) -> float:
    os.environ["CHAOS_MCP_STATE_DIR"] = str(state)
    return schedule_metrics("schedule", embedded_default().targets["schedule"])["coverage_pct"]  # type: ignore[arg-type]


async def injected(client: Client) -> str:
    experiment_id = result_data(await client.call_tool("design_experiment", valid_design(duration="60s")))[
        "experiment_id"
    ]
    result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
    result_data(
        await client.call_tool(
            "inject_failure",
            {"experiment_id": experiment_id, "environment": "test", "target_component": "schedule"},
        )
    )
    return str(experiment_id)


def state_of(state: Path, experiment_id: str) -> str:
    journal = Journal(f"sqlite:///{state / 'journal.sqlite3'}")
    row = journal.get_experiment(experiment_id)
    journal.close()
    assert row is not None
    return row.state


def cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAOS_MCP_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "chaos_mcp.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_chaos_mcp_abort_from_a_shell_reverts_a_running_server_s_faults(
    tmp_path: Path, state_dir: Path
) -> None:
    async with Client(serve_params(state_dir, tmp_path / "pid"), mode="legacy") as client:
        experiment_id = await injected(client)
        assert coverage(state_dir) < 100
        done = cli(state_dir, "abort", "--reason", "operator pulled the switch")
        assert done.returncode == 0, done.stdout + done.stderr
        assert coverage(state_dir) == 100 and state_of(state_dir, experiment_id) == "aborted"
        second = result_data(await client.call_tool("design_experiment", valid_design()))["experiment_id"]
        result_data(await client.call_tool("measure_steady_state", {"experiment_id": second}))
        refused = await client.call_tool(
            "inject_failure", {"experiment_id": second, "environment": "test", "target_component": "schedule"}
        )
        assert refused.is_error and "chaos-mcp arm" in result_text(refused)
        assert cli(state_dir, "arm").returncode == 0
        result_data(
            await client.call_tool(
                "inject_failure",
                {"experiment_id": second, "environment": "test", "target_component": "schedule"},
            )
        )
        result_data(await client.call_tool("rollback", {"experiment_id": second}))


async def test_sigterm_to_the_server_reverts_everything_within_a_second(
    tmp_path: Path, state_dir: Path
) -> None:
    pid_file = tmp_path / "pid"
    async with Client(serve_params(state_dir, pid_file), mode="legacy") as client:
        experiment_id = await injected(client)
        began = time.monotonic()
        os.kill(server_pid(pid_file), signal.SIGTERM)
        with anyio.fail_after(5):
            while coverage(state_dir) < 100:
                await anyio.sleep(0.02)
        reverted_after = time.monotonic() - began
    assert reverted_after < 1.0, f"reverted {reverted_after:.2f}s after SIGTERM"
    assert state_of(state_dir, experiment_id) == "aborted"
    journal = Journal(f"sqlite:///{state_dir / 'journal.sqlite3'}")
    assert journal.get_control("armed") == "false"
    journal.close()


async def test_a_client_that_disconnects_mid_experiment_gets_its_faults_rolled_back(
    tmp_path: Path, state_dir: Path
) -> None:
    async with Client(serve_params(state_dir, tmp_path / "pid"), mode="legacy") as client:
        experiment_id = await injected(client)
        assert coverage(state_dir) < 100
    assert coverage(state_dir) == 100
    assert state_of(state_dir, experiment_id) == "aborted"
    journal = Journal(f"sqlite:///{state_dir / 'journal.sqlite3'}")
    reasons = [e.data.get("reason", "") for e in journal.events(experiment_id, ["aborted"])]
    assert any("disconnected" in reason for reason in reasons)
    assert journal.get_control("armed") != "false", "a disconnect is not the kill switch"
    journal.close()
