"""Faults end by their deadline even when the server dies; `serve` recovers what a dead server left."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from chaos_mcp.config import embedded_default
from chaos_mcp.engine.journal import Journal
from chaos_mcp.schedule.api import schedule_metrics
from tests.e2e.conftest import result_data
from tests.e2e.serving import serve_params, server_pid
from tests.helpers import kill_matching, valid_design

pytestmark = pytest.mark.anyio


def coverage(state: Path) -> float:
    os.environ["CHAOS_MCP_STATE_DIR"] = str(state)
    target = embedded_default().targets["schedule"]
    return schedule_metrics("schedule", target)["coverage_pct"]  # type: ignore[arg-type]


async def inject_then_kill(state: Path, duration: str) -> tuple[str, float]:
    pid_file = state / "server.pid"
    async with Client(serve_params(state, pid_file), mode="legacy") as client:
        plan = result_data(await client.call_tool("design_experiment", valid_design(duration=duration)))
        experiment_id = plan["experiment_id"]
        result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
        result_data(
            await client.call_tool(
                "inject_failure",
                {"experiment_id": experiment_id, "environment": "test", "target_component": "schedule"},
            )
        )
        deadline = time.time() + float(duration.rstrip("s"))
        os.kill(server_pid(pid_file), signal.SIGKILL)
    return experiment_id, deadline


async def test_a_sigkilled_server_s_fault_is_gone_by_its_deadline(tmp_path: Path, state_dir: Path) -> None:
    experiment_id, deadline = await inject_then_kill(state_dir, "4s")
    assert coverage(state_dir) < 100, "the removal is in effect right after the server died"
    with anyio.fail_after(deadline - time.time() + 1.0):
        while coverage(state_dir) < 100:
            await anyio.sleep(0.05)
    assert time.time() <= deadline + 1.0
    journal = Journal(f"sqlite:///{state_dir / 'journal.sqlite3'}")
    assert [f.status for f in journal.faults(experiment_id)] == ["reverted"]
    assert "auto_reverted" in [e.kind for e in journal.events(experiment_id)]
    journal.close()


async def test_serve_at_start_reverts_what_a_dead_server_left_active(tmp_path: Path, state_dir: Path) -> None:
    experiment_id, _ = await inject_then_kill(state_dir, "60s")
    kill_matching(
        f"chaos_mcp.engine.warden .* {experiment_id}"
    )  # the warden dies too: only start-up recovery
    assert coverage(state_dir) < 100
    async with Client(serve_params(state_dir, state_dir / "second.pid"), mode="legacy") as client:
        record = result_data(await client.call_tool("get_experiment", {"experiment_id": experiment_id}))
    assert record["state"] == "aborted" and record["faults"][0]["status"] == "reverted"
    assert "recovered" in [e["kind"] for e in record["events"]]
    assert coverage(state_dir) == 100
