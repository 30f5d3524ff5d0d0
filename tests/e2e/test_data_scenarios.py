"""Data chaos through the MCP tools on a real PostgreSQL schedule database, and crash recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from mcp import Client

from chaos_mcp.config import parse_settings
from chaos_mcp.data.mapping import resolve
from chaos_mcp.data.schema import migrate, seed
from chaos_mcp.data.validate import checksum
from chaos_mcp.schedule.synthetic import generate
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, result_text, settings_with_journal
from tests.fixtures.services import PostgresDatabase
from tests.helpers import kill_matching

pytestmark = pytest.mark.anyio


def config(database: PostgresDatabase, mutation: str = "allow") -> str:
    return (
        f'[policy]\ndata_mutation = "{mutation}"\n\n[targets.scheduledb]\nkind = "schedule"\n'
        f'environment = "test"\nsource = "postgres"\ndsn = "{database.app_dsn}"\nmapping = {{}}\n'
    )


def design(scenario: str, **parameters: Any) -> dict[str, Any]:
    return {
        "experiment_type": "data",
        "target_component": "scheduledb",
        "scenario": scenario,
        "hypothesis": "When assignments are corrupted, the scheduling system should flag every bad row.",
        "environment": "test",
        "blast_radius": {
            "scope": "test schedule database, at most 5 rows",
            "targets": ["scheduledb"],
            "max_rows": 5,
        },
        "duration": "60s",
        "rollback_plan": ["Restore the row images", "Verify the checksums"],
        "parameters": parameters,
    }


@pytest.fixture
def seeded(own_postgres: PostgresDatabase) -> PostgresDatabase:
    migrate(own_postgres.app_dsn)
    seed(own_postgres.app_dsn, generate(seed=7))
    return own_postgres


def table_checksum(database: PostgresDatabase) -> str:
    with psycopg.connect(database.app_dsn) as conn:
        return checksum(conn, resolve({}))


@pytest.mark.parametrize("scenario", ["corrupt_assignment", "duplicate_shift", "missing_credential"])
async def test_data_chaos_is_detected_during_the_window_and_restored_exactly(
    tmp_path: Path, state_dir: Path, seeded: PostgresDatabase, scenario: str
) -> None:
    before = table_checksum(seeded)
    settings = settings_with_journal(tmp_path, parse_settings(config(seeded)))
    async with Client(build_server(settings), mode="legacy") as client:
        plan = result_data(await client.call_tool("design_experiment", design(scenario, rows=3)))
        experiment_id = plan["experiment_id"]
        result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
        result_data(
            await client.call_tool(
                "inject_failure",
                {"experiment_id": experiment_id, "environment": "test", "target_component": "scheduledb"},
            )
        )
        assert table_checksum(seeded) != before
        during = result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
        invalid = [m["value"] for m in during["measurements"] if m["metric"] == "invalid_rows"]
        assert invalid and invalid[0] > 0, "the validator must see the bad rows"
        rollback = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
        assert rollback["status"] == "COMPLETE", rollback
    assert table_checksum(seeded) == before


async def test_max_rows_beyond_the_blast_radius_and_deny_policy_are_refused(
    tmp_path: Path, state_dir: Path, seeded: PostgresDatabase
) -> None:
    settings = settings_with_journal(tmp_path, parse_settings(config(seeded, "deny")))
    async with Client(build_server(settings), mode="legacy") as client:
        too_many = await client.call_tool("design_experiment", design("corrupt_assignment", rows=50))
        assert too_many.is_error and "max_rows" in result_text(too_many)
        plan = result_data(await client.call_tool("design_experiment", design("corrupt_assignment", rows=2)))
        result_data(await client.call_tool("measure_steady_state", {"experiment_id": plan["experiment_id"]}))
        denied = await client.call_tool(
            "inject_failure",
            {"experiment_id": plan["experiment_id"], "environment": "test", "target_component": "scheduledb"},
        )
        assert denied.is_error and "data_mutation is 'deny'" in result_text(denied)


LIFECYCLE = """
import anyio, json, sys
from chaos_mcp.config import load_settings
from chaos_mcp.engine.core import Engine
from chaos_mcp.logs import configure_logging
configure_logging("WARNING")
async def main():
    async with Engine.running(load_settings()) as engine:
        experiment_id = engine.design(json.loads(sys.argv[1]))["experiment_id"]
        await engine.measure(experiment_id)
        await engine.inject(experiment_id, "test", "scheduledb")
        print("injected", flush=True)
        await anyio.sleep(60)
anyio.run(main)
"""


def test_a_server_killed_between_mutation_and_revert_is_restored_exactly_by_recover(
    tmp_path: Path, seeded: PostgresDatabase
) -> None:
    before = table_checksum(seeded)
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "chaos.toml").write_text(config(seeded))
    env = {**os.environ, "CHAOS_MCP_STATE_DIR": str(state), "CHAOS_MCP_CONFIG": str(tmp_path / "chaos.toml")}
    process = subprocess.Popen(
        [sys.executable, "-c", LIFECYCLE, json.dumps(design("duplicate_shift", rows=4))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line == b"injected", process.communicate()[1].decode()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    kill_matching(f"chaos_mcp.engine.warden sqlite:///{state}")
    assert table_checksum(seeded) != before
    done = subprocess.run(
        [sys.executable, "-m", "chaos_mcp.cli", "recover"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert table_checksum(seeded) == before
