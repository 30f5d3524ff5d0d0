"""Randomized crashes: kill the engine at a random point of the lifecycle, then `chaos-mcp recover`."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import psycopg
import pytest

from chaos_mcp import operations
from chaos_mcp.config import load_settings
from chaos_mcp.engine.journal import Journal
from tests.fixtures.services import PostgresDatabase
from tests.helpers import kill_matching

RUNS = 30
LIFECYCLE = """
import anyio, sys, json
from chaos_mcp.config import load_settings
from chaos_mcp.engine.core import Engine
from chaos_mcp.logs import configure_logging
configure_logging("WARNING")
design = json.loads(sys.argv[1])
async def main():
    async with Engine.running(load_settings()) as engine:
        experiment_id = engine.design(design)["experiment_id"]
        print("designed", flush=True)
        await engine.measure(experiment_id)
        print("baselined", flush=True)
        await engine.inject(experiment_id, design["environment"], design["target_component"])
        print("injected", flush=True)
        await engine.measure(experiment_id)
        await engine.rollback(experiment_id)
        print("rolled back", flush=True)
anyio.run(main)
"""


def design(target: str) -> dict[str, object]:
    return {
        "experiment_type": "schedule" if target == "schedule" else "infrastructure",
        "target_component": target,
        "hypothesis": f"When {target} fails, the system should recover on its own.",
        "environment": "test",
        "blast_radius": {"scope": "test copy only", "targets": [target]},
        "duration": "60s",
        "rollback_plan": ["Revert the fault", "Verify the steady state"],
    }


def kill_wardens(state: Path) -> None:
    kill_matching(f"chaos_mcp.engine.warden sqlite:///{state}")
    kill_matching("chaos-mcp-warden-", state)


def database_flags(dsn: str, database: str) -> tuple[bool, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT datallowconn, datconnlimit FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
    assert row is not None
    return bool(row[0]), int(row[1])


@pytest.mark.slow
def test_after_random_crashes_recover_leaves_no_fault_and_original_settings(
    tmp_path: Path, own_postgres: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "chaos.toml"
    config.write_text(
        f'[targets.schedule]\nkind = "schedule"\nenvironment = "test"\n\n'
        f'[targets.db]\nkind = "postgres"\nenvironment = "test"\ndsn = "{own_postgres.admin_dsn}"\n'
    )
    env = {**os.environ, "CHAOS_MCP_STATE_DIR": str(state), "CHAOS_MCP_CONFIG": str(config)}
    monkeypatch.setenv("CHAOS_MCP_STATE_DIR", str(state))
    settings = load_settings(str(config))
    original = database_flags(own_postgres.admin_dsn, own_postgres.database)
    rng = random.Random(20261126)
    crashed_with_faults = 0
    for _ in range(RUNS):
        target = rng.choice(["schedule", "db"])
        process = subprocess.Popen(
            [sys.executable, "-c", LIFECYCLE, json.dumps(design(target))],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        step = rng.choice([b"designed", b"baselined", b"injected", b"injected"])
        while (line := process.stdout.readline().strip()) != step:
            assert line, f"the lifecycle script ended early: {process.communicate()[1].decode()[-1500:]}"
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        kill_wardens(state)  # the dead-man switch is not what this test is about: recover must do it alone
        journal = Journal(f"sqlite:///{state / 'journal.sqlite3'}")
        crashed_with_faults += bool(journal.active_faults())
        journal.close()
        if rng.random() < 0.2:  # now and then through the real command line, otherwise in-process
            done = subprocess.run(
                [sys.executable, "-m", "chaos_mcp.cli", "recover"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        else:
            assert anyio.run(operations.recover, settings, io.StringIO()) == 0
        journal = Journal(f"sqlite:///{state / 'journal.sqlite3'}")
        assert journal.active_faults() == []
        journal.close()
        assert database_flags(own_postgres.admin_dsn, own_postgres.database) == original
        overlay = state / "schedule" / "schedule.json"
        assert not overlay.exists() or json.loads(overlay.read_text()).get("overlays", []) == []
    assert crashed_with_faults >= 5, "the random crash points should often leave faults behind"
