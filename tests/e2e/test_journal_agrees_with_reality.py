"""What the journal says is what is true (issue 13, findings 1, 3 and 11 on the recover side).

Real PostgreSQL databases of the test's own; `chaos-mcp recover` and `abort` run as real
processes where their exit status matters; every "unchanged" is checked with a query of the
test's own, never with the fault's bookkeeping.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from psycopg import sql

from chaos_mcp import operations
from chaos_mcp.config import Settings, parse_settings
from chaos_mcp.data.schema import migrate, seed
from chaos_mcp.engine.core import Engine, EngineError
from chaos_mcp.engine.journal import ExperimentRow, Journal
from chaos_mcp.faults.postgres import BlockConnections
from chaos_mcp.reports.render import generate_report
from chaos_mcp.schedule.synthetic import generate
from tests.fixtures.services import SHARED_POSTGRES, PostgresDatabase
from tests.helpers import kill_matching

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def seeded(own_postgres: PostgresDatabase) -> PostgresDatabase:
    migrate(own_postgres.app_dsn)
    seed(own_postgres.app_dsn, generate(seed=7))
    return own_postgres


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "state"
    path.mkdir()
    monkeypatch.setenv("CHAOS_MCP_STATE_DIR", str(path))
    yield path
    kill_matching(f"chaos_mcp.engine.warden sqlite:///{path}")  # only the wardens of this test's journal


def write_config(state: Path, targets: str) -> tuple[Path, Settings]:
    text = (
        f'[journal]\nurl = "sqlite:///{state / "journal.sqlite3"}"\n\n[policy]\ndata_mutation = "allow"\n\n'
    )
    path = state / "chaos.toml"
    path.write_text(text + targets)
    return path, parse_settings(text + targets, source=str(path))


def schedule_target(database: PostgresDatabase, mapping: str = "{}") -> str:
    return (
        f'[targets.scheduledb]\nkind = "schedule"\nenvironment = "test"\nsource = "postgres"\n'
        f'dsn = "{database.app_dsn}"\nmapping = {mapping}\n'
    )


def cli(config: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAOS_MCP_STATE_DIR": str(state), "PYTHONPATH": str(REPO)}
    env.pop("CHAOS_MCP_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "chaos_mcp.cli", "--config", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def credentials_digest(database: PostgresDatabase) -> tuple[int, str]:
    """The credentials table, by an independent query as the superuser."""
    with psycopg.connect(database.admin_dsn) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(md5(string_agg(c::text, '|' ORDER BY c.id)), '') FROM credentials c"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def admin(database: PostgresDatabase, statement: sql.Composable | str) -> None:
    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        conn.execute(statement)


def data_design(scenario: str = "missing_credential", **parameters: Any) -> dict[str, Any]:
    return {
        "experiment_type": "data",
        "target_component": "scheduledb",
        "scenario": scenario,
        "hypothesis": "When a credential disappears, the scheduling system should flag the assignments.",
        "environment": "test",
        "blast_radius": {"scope": "test schedule database, 1 row", "targets": ["scheduledb"], "max_rows": 1},
        "duration": "60s",
        "rollback_plan": ["Restore the row images", "Verify the checksums"],
        "parameters": {"rows": 1, "kinds": ["removed"], "seed": 5, **parameters},
    }


async def baselined(engine: Engine, design: dict[str, Any]) -> str:
    experiment_id = str(engine.design(design)["experiment_id"])
    await engine.measure(experiment_id)
    return experiment_id


async def test_a_data_fault_through_a_view_it_could_not_restore_is_refused_before_any_row_changes(
    state: Path, seeded: PostgresDatabase
) -> None:
    """Finding 11: the credentials reached through a view with a computed column (DELETE works, the
    INSERT that would restore a removed row does not)."""
    with psycopg.connect(seeded.app_dsn, autocommit=True) as app:
        app.execute(
            "CREATE VIEW person_certifications AS "
            "SELECT id, person_id, name, expires, upper(name) AS label FROM credentials"
        )
    before = credentials_digest(seeded)
    mapping = '{ credentials = { table = "person_certifications" } }'
    _config, settings = write_config(state, schedule_target(seeded, mapping))
    async with Engine.running(settings) as engine:
        experiment_id = await baselined(engine, data_design())
        with pytest.raises(EngineError) as refused:
            await engine.inject(experiment_id, "test", "scheduledb")
        message = str(refused.value)
        assert "refused before anything was changed" in message and "label" in message, message
        assert seeded.password not in message
        shown = engine.get(experiment_id)
        assert shown["state"] == "failed"
        assert [f["status"] for f in shown["faults"]] == ["not_injected"]
        assert shown["faults_in_force"] == [] and shown["revert_failed"] == []
        rollback = await engine.rollback(experiment_id)
        assert rollback["status"] == "COMPLETE"
        assert [s["status"] for s in rollback["steps"]] == ["NOT_INJECTED"]
        assert "nothing was injected" in rollback["note"], rollback
        assert "already reverted" not in str(rollback) and "verified gone" not in str(rollback)
        report = generate_report(engine, experiment_id, None, None, "markdown")["markdown"]
    assert "nothing was injected" in report and "verified gone" not in report
    assert credentials_digest(seeded) == before


async def test_a_revert_that_fails_stays_in_force_until_recover_retries_it_after_the_cause_is_fixed(
    state: Path, seeded: PostgresDatabase
) -> None:
    before = credentials_digest(seeded)
    config, settings = write_config(state, schedule_target(seeded))
    async with Engine.running(settings) as engine:
        experiment_id = await baselined(engine, data_design())
        await engine.inject(experiment_id, "test", "scheduledb")
        assert credentials_digest(seeded)[0] == before[0] - 1
        revoke = sql.SQL("REVOKE INSERT ON credentials FROM {}").format(sql.Identifier(seeded.role))
        admin(seeded, revoke)  # the restore of the removed row now cannot run
        rollback = await engine.rollback(experiment_id)
        fault_id = f"{experiment_id}-f0"
        assert rollback["status"] == "FAILED"
        assert [s["status"] for s in rollback["steps"]] == ["FAILED"]
        assert "InsufficientPrivilege" in rollback["steps"][0]["detail"]
        assert rollback["recovery"]["recovered"] is False and "still in force" in rollback["recovery"]["why"]
        shown = engine.get(experiment_id)
        assert shown["faults_in_force"] == [fault_id] and shown["revert_failed"] == [fault_id]
        assert "chaos-mcp recover" in shown["warning"]
        listed = {e["experiment_id"]: e for e in engine.list()}
        assert listed[experiment_id]["revert_failed"] == [fault_id]
        held = engine.journal.holds()
        assert held.pop("scheduledb") == experiment_id, "the target is not free yet"
        assert set(held.values()) == {experiment_id}, "nor the database it acts on"
        report = generate_report(engine, experiment_id, None, None, "markdown")["markdown"]
        assert not re.search(r"back (after )?\d", report) and "still in force" in report, report

    aborted = cli(config, state, "abort", "--reason", "test")  # the kill switch retries it too
    assert aborted.returncode == 1, aborted.stdout + aborted.stderr
    assert f"IN FORCE {fault_id}" in aborted.stdout
    still = cli(config, state, "recover")
    assert still.returncode == 1, still.stdout + still.stderr
    assert f"IN FORCE {fault_id}" in still.stdout and "1 still in force" in still.stdout
    assert "chaos-mcp recover" in still.stdout and seeded.password not in still.stdout + still.stderr
    assert credentials_digest(seeded)[0] == before[0] - 1

    grant = sql.SQL("GRANT INSERT ON credentials TO {}").format(sql.Identifier(seeded.role))
    admin(seeded, grant)
    fixed = cli(config, state, "recover")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "recovered 1 fault(s)" in fixed.stdout and "0 still in force" in fixed.stdout
    assert credentials_digest(seeded) == before
    async with Engine.running(settings) as engine:
        assert engine.get(experiment_id)["faults_in_force"] == []
        assert engine.journal.holds() == {}


async def test_a_fault_the_journal_calls_reverted_but_in_effect_again_is_found_and_reverted_by_recover(
    state: Path, own_postgres: PostgresDatabase
) -> None:
    def allowed() -> bool:
        with psycopg.connect(SHARED_POSTGRES) as conn:
            row = conn.execute(
                "SELECT datallowconn FROM pg_database WHERE datname = %s", (own_postgres.database,)
            ).fetchone()
        assert row is not None
        return bool(row[0])

    target = f'[targets.db]\nkind = "postgres"\nenvironment = "test"\ndsn = "{own_postgres.admin_dsn}"\n'
    config, settings = write_config(state, target)
    design = {
        "experiment_type": "infrastructure",
        "target_component": "db",
        "scenario": "db_connection_loss",
        "hypothesis": "When the database refuses connections, the application should recover after.",
        "environment": "test",
        "blast_radius": {"scope": "test database only", "targets": ["db"]},
        "duration": "60s",
        "rollback_plan": ["Allow connections again", "Verify the database answers"],
    }
    async with Engine.running(settings) as engine:
        experiment_id = await baselined(engine, design)
        await engine.inject(experiment_id, "test", "db")
        assert not allowed()
        rollback = await engine.rollback(experiment_id)
        assert rollback["status"] == "COMPLETE", rollback
    assert allowed()
    quiet = cli(config, state, "recover")  # nothing to do: the journal and the system agree
    assert quiet.returncode == 0 and "recovered 0 fault(s)" in quiet.stdout, quiet.stdout + quiet.stderr

    def block_by_hand() -> None:  # behind the journal's back
        with psycopg.connect(SHARED_POSTGRES, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                    sql.Identifier(own_postgres.database)
                )
            )

    block_by_hand()
    found = cli(config, state, "recover")
    assert found.returncode == 0, found.stdout + found.stderr
    assert "recovered 1 fault(s), 1 of them found in effect" in found.stdout, found.stdout
    assert allowed()
    block_by_hand()
    assert await operations.recover_orphans(settings) == 1  # what `serve` runs at start
    assert allowed()
    async with Engine.running(settings) as engine:
        kinds = [e["kind"] for e in engine.get(experiment_id)["events"]]
    assert kinds.count("fault_found_in_effect") == 2


async def test_recovery_is_not_reported_as_reached_while_the_data_differs_from_the_baseline(
    state: Path, seeded: PostgresDatabase
) -> None:
    _config, settings = write_config(state, schedule_target(seeded))
    # 10s: the recovery measurement is bounded by max(10s, twice the duration)
    design = data_design("corrupt_assignment", kinds=["missing_role"], seed=3) | {"duration": "10s"}
    async with Engine.running(settings) as engine:
        experiment_id = await baselined(engine, design)
        await engine.inject(experiment_id, "test", "scheduledb")
        change = engine.journal.faults(experiment_id)[0].record["fields"]["changes"][0]
        role = json.loads(change["before"])["role"]
        with psycopg.connect(seeded.app_dsn, autocommit=True) as app:  # the application repairs it its own
            app.execute(  # way: valid again (steady), yet not the row the baseline had
                "UPDATE assignments SET role = %s, hours = 1 WHERE id = %s", (role, int(change["key"]))
            )
        rollback = await engine.rollback(experiment_id)
        assert rollback["status"] == "PARTIAL", rollback
        assert not rollback["integrity"]["intact"]
        recovery = rollback["recovery"]
        assert recovery["recovered"] is False and recovery["recovery_time_s"] is None
        assert "differs from the baseline" in recovery["why"] and "checksum" in recovery["why"]
        facts = generate_report(engine, experiment_id, None, None, "json")["json"]
    rows = [r for r in facts["results"] if r["metric"] == "recovery_time"]
    assert rows and all(r["status"] == "FAIL" for r in rows), rows
    gate = next(g for g in facts["gates"]["mandatory"] if g["gate"] == "Rollback Complete")
    assert gate["status"] == "FAIL" and "steady state back" not in gate["evidence"]


async def test_the_warden_retries_a_revert_that_failed_at_the_deadline_until_the_cause_is_fixed(
    state: Path, seeded: PostgresDatabase
) -> None:
    before = credentials_digest(seeded)
    _config, settings = write_config(state, schedule_target(seeded))
    settings = settings.model_copy(
        update={"policy": settings.policy.model_copy(update={"on_disconnect": "continue"})}
    )
    async with Engine.running(settings) as engine:  # the server goes away; only the warden is left
        experiment_id = await baselined(engine, data_design() | {"duration": "3s"})
        await engine.inject(experiment_id, "test", "scheduledb")
    admin(seeded, sql.SQL("REVOKE INSERT ON credentials FROM {}").format(sql.Identifier(seeded.role)))
    journal = Journal(settings.journal.resolved_url())
    try:
        await wait_for_status(journal, experiment_id, "revert_failed", within=10.0)
        assert credentials_digest(seeded)[0] == before[0] - 1
        async with Engine.running(settings) as engine:
            assert engine.get(experiment_id)["revert_failed"] == [f"{experiment_id}-f0"]
        admin(seeded, sql.SQL("GRANT INSERT ON credentials TO {}").format(sql.Identifier(seeded.role)))
        await wait_for_status(journal, experiment_id, "reverted", within=10.0)
        assert credentials_digest(seeded) == before
        attempts = [
            e.data["attempt"] for e in journal.events(experiment_id, ["auto_reverted", "revert_retried"])
        ]
        assert attempts[0] == 1 and attempts[-1] > 1
    finally:
        journal.close()


async def wait_for_status(journal: Journal, experiment_id: str, status: str, within: float) -> None:
    with anyio.fail_after(within):
        while [f.status for f in journal.faults(experiment_id)] != [status]:
            await anyio.sleep(0.1)


async def test_a_fault_whose_injecting_transaction_was_refused_is_journaled_as_not_injected(
    state: Path, seeded: PostgresDatabase
) -> None:
    """The other half of finding 11: refused at inject, yet journaled `reverted` and rolled back as
    "COMPLETE … already reverted; verified gone"."""
    with psycopg.connect(seeded.app_dsn, autocommit=True) as app:
        app.execute(
            "CREATE FUNCTION no_insert() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'credentials are append-only for auditors'; END $$"
        )
        app.execute(
            "CREATE TRIGGER no_insert BEFORE INSERT ON credentials FOR EACH ROW EXECUTE FUNCTION no_insert()"
        )
    before = credentials_digest(seeded)
    _config, settings = write_config(state, schedule_target(seeded))
    async with Engine.running(settings) as engine:
        experiment_id = await baselined(engine, data_design())
        with pytest.raises(EngineError, match="refused before anything was changed"):
            await engine.inject(experiment_id, "test", "scheduledb")
        assert [f.status for f in engine.journal.faults(experiment_id)] == ["not_injected"]
        refused = engine.journal.events(experiment_id, ["fault_not_injected"])
        assert [e.data["at"] for e in refused] == ["inject"] and "append-only" in refused[0].data["reason"]
        rollback = await engine.rollback(experiment_id)
        assert [s["status"] for s in rollback["steps"]] == ["NOT_INJECTED"]
        assert "already reverted" not in str(rollback)
    assert credentials_digest(seeded) == before


def test_a_failed_revert_that_a_person_settled_by_hand_is_marked_reverted_not_redone(
    state: Path, own_postgres: PostgresDatabase
) -> None:
    """Finding 1's journal: the second of two stacked blocks captured "blocked" as the previous state,
    so its revert re-blocks. Once a person has allowed connections again, recover must see the fault
    gone and leave the database alone, not restore the stale "blocked"."""
    target = f'[targets.db]\nkind = "postgres"\nenvironment = "test"\ndsn = "{own_postgres.admin_dsn}"\n'
    config, settings = write_config(state, target)
    fault = BlockConnections(
        dsn=own_postgres.admin_dsn,
        database=own_postgres.database,
        previous_allow_connections=False,
        previous_connection_limit=-1,
    )
    now = time.time()
    journal = Journal(settings.journal.resolved_url())
    journal.create_experiment(
        ExperimentRow("exp-stacked", "db", "test", "db_connection_loss", "rolled_back", now, now, {})
    )
    journal.write_ahead("exp-stacked-f0", "exp-stacked", 0, fault.to_record(), now)
    journal.set_fault_status("exp-stacked-f0", "revert_failed")
    journal.close()

    done = cli(config, state, "recover")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recovered 1 fault(s)" in done.stdout and "0 still in force" in done.stdout
    with psycopg.connect(SHARED_POSTGRES) as conn:
        row = conn.execute(
            "SELECT datallowconn FROM pg_database WHERE datname = %s", (own_postgres.database,)
        ).fetchone()
    assert row == (True,)
    journal = Journal(settings.journal.resolved_url())
    assert [f.status for f in journal.faults("exp-stacked")] == ["reverted"]
    journal.close()
