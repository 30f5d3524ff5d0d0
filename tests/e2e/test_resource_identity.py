"""A fault reaches every declared target that is physically what it acts on, whatever it is called.

Findings of an outside attacker (issue 13): a test-labelled name for a production database, a DSN
without a dbname, a `kind="tcp"` target in front of a test Redis. Every "untouched" is checked by an
independent witness: the test's own psycopg look at pg_database.datallowconn, or a client timing
its own PINGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from mcp import Client

from chaos_mcp.config import PostgresTarget, parse_settings
from chaos_mcp.data.mapping import resolve
from chaos_mcp.data.schema import migrate, seed
from chaos_mcp.data.validate import checksum
from chaos_mcp.resources import identify_all
from chaos_mcp.scenarios.infrastructure import database_of
from chaos_mcp.schedule.synthetic import generate
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, result_text, settings_with_journal
from tests.e2e.test_shared_resources import (
    PingWitness,
    answering,
    baselined,
    design,
    inject,
    redis_target,
)
from tests.fixtures.services import PostgresDatabase, RedisServer
from tests.helpers import free_port

pytestmark = pytest.mark.anyio


def allows_connections(database: str) -> bool:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3) as conn:
        found = conn.execute(
            "SELECT datallowconn FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
    assert found is not None
    return bool(found[0])


def two_names(database: str, allow_production: bool) -> Any:
    """`app_test` reaches the database through the maintenance DSN + `database =`; `app_prod` by its DSN."""
    toml = f"[policy]\nallow_production = {str(allow_production).lower()}\n\n"
    toml += (
        '[targets.app_test]\nkind = "postgres"\nenvironment = "test"\n'
        f'dsn = "postgresql://postgres@127.0.0.1:5432/postgres"\ndatabase = "{database}"\n\n'
        '[targets.app_prod]\nkind = "postgres"\nenvironment = "production"\n'
        f'dsn = "postgresql://postgres@localhost:5432/{database}"\n'
    )
    return toml


async def test_a_test_name_for_the_production_database_is_refused_when_production_is_not_allowed(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    settings = settings_with_journal(tmp_path, parse_settings(two_names(own_postgres.database, False)))
    async with Client(build_server(settings), mode="legacy", elicitation_callback=answering(True)) as client:  # type: ignore[arg-type]
        plan = result_data(
            await client.call_tool("design_experiment", design("app_test", "db_connection_loss"))
        )
        assert "app_prod" in str(plan), plan  # told at design time already
        experiment_id = await baselined(client, "app_test", "db_connection_loss")
        refused = await inject(client, experiment_id, "app_test")
        text = result_text(refused)
        assert refused.is_error and "'app_prod'" in text and "allow_production" in text, text
        record = result_data(await client.call_tool("get_experiment", {"experiment_id": experiment_id}))
        assert record["state"] == "baselined" and record["faults"] == []
    assert allows_connections(own_postgres.database)


async def test_a_test_name_for_the_production_database_needs_a_person_even_when_production_is_allowed(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    settings = settings_with_journal(tmp_path, parse_settings(two_names(own_postgres.database, True)))
    async with Client(build_server(settings), mode="legacy") as client:
        experiment_id = await baselined(client, "app_test", "db_connection_loss")
        refused = await inject(client, experiment_id, "app_test")
        text = result_text(refused)
        assert refused.is_error and "'app_prod'" in text and "cannot ask" in text, text
    assert allows_connections(own_postgres.database)
    callback = answering(approve=True)
    async with Client(build_server(settings), mode="legacy", elicitation_callback=callback) as client:  # type: ignore[arg-type]
        experiment_id = await baselined(client, "app_test", "db_connection_loss")
        injected = result_data(await inject(client, experiment_id, "app_test"))
        assert injected["approvals"] == ["approved by a person: shared_resource"]
        assert callback.asked and "'app_prod'" in callback.asked[0]
        assert not allows_connections(own_postgres.database)  # the witness sees the approved fault
        result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
    assert allows_connections(own_postgres.database)


async def test_a_dsn_without_a_dbname_is_identified_as_the_database_libpq_connects_it_to(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    # libpq takes the user name for a missing dbname (the fixture's role is named like its database);
    # the attacker's schedule target was taken for 'postgres'.
    bare = f"postgresql://{own_postgres.role}:{own_postgres.password}@127.0.0.1:5432"
    with psycopg.connect(bare) as conn:
        row = conn.execute(
            "SELECT current_database(), (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    assert row is not None and row[0] == own_postgres.database  # the witness: where libpq really goes
    toml = (
        f'[targets.sched]\nkind = "schedule"\nenvironment = "test"\nsource = "postgres"\ndsn = "{bare}"\n'
        "mapping = {}\n\n"
        f'[targets.bare]\nkind = "postgres"\nenvironment = "test"\ndsn = "{bare}"\n\n'
        f'[targets.prod]\nkind = "postgres"\nenvironment = "production"\n'
        f'dsn = "postgresql://postgres@localhost:5432/{own_postgres.database}"\n'
    )
    settings = parse_settings(toml)
    found = await identify_all(settings)
    assert found["sched"].database == found["bare"].database == found["prod"].database
    assert found["prod"].database is not None and found["prod"].database.endswith(f"/db:{row[1]}")
    bare_target = settings.targets["bare"]
    assert isinstance(bare_target, PostgresTarget)
    assert database_of(bare_target) == own_postgres.database  # the fault's database too

    async with Client(build_server(settings_with_journal(tmp_path, settings)), mode="legacy") as client:
        plan = result_data(await client.call_tool("design_experiment", design("bare", "db_connection_loss")))
        assert "will refuse" in plan["approval"] and "'prod'" in plan["approval"], plan["approval"]
    assert allows_connections(own_postgres.database)


async def test_a_production_tcp_target_in_front_of_a_test_redis_is_seen_as_the_same_server(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    toml = redis_target("cache", f"redis://localhost:{own_redis.port}/0", "test")
    toml += '[targets.prod_tcp]\nkind = "tcp"\nenvironment = "production"\n'
    toml += f'address = "127.0.0.1:{own_redis.port}"\n\n'
    toml += (
        f'[targets.nothing]\nkind = "tcp"\nenvironment = "production"\naddress = "127.0.0.1:{free_port()}"\n'
    )
    witness = PingWitness(f"redis://127.0.0.1:{own_redis.port}/0")
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        listed = {t["name"]: t for t in result_data(await client.call_tool("list_targets", {}))["targets"]}
        assert listed["cache"]["shares_instance_with"] == ["prod_tcp"]
        assert listed["prod_tcp"]["shares_instance_with"] == ["cache"]
        assert listed["nothing"].get("shares_instance_with", []) == []  # not Redis: no identity, as before
        experiment_id = await baselined(client, "cache", "redis_timeout")
        with witness.watching():
            witness.wait_for_pings(5)
            refused = await inject(client, experiment_id, "cache")
            witness.wait_for_pings(30)  # a pause, had there been one, would stall these
        text = result_text(refused)
        assert refused.is_error and "'prod_tcp'" in text and "allow_production" in text, text
    assert witness.pings > 10 and witness.slowest < 0.25, (witness.pings, witness.slowest)


async def test_a_data_fault_on_a_schedule_whose_database_is_production_is_refused_and_nothing_changes(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    migrate(own_postgres.app_dsn)
    seed(own_postgres.app_dsn, generate(seed=7))
    # The attacker's c7: the schedule's DSN names no database, so libpq connects to the role's namesake.
    bare = f"postgresql://{own_postgres.role}:{own_postgres.password}@127.0.0.1:5432"
    toml = (
        '[policy]\ndata_mutation = "allow"\n\n[targets.sched]\nkind = "schedule"\nenvironment = "test"\n'
        f'source = "postgres"\ndsn = "{bare}"\nmapping = {{}}\n\n'
        '[targets.prod]\nkind = "postgres"\nenvironment = "production"\n'
        f'dsn = "postgresql://postgres@localhost:5432/{own_postgres.database}"\n'
    )
    with psycopg.connect(own_postgres.app_dsn) as conn:
        before = checksum(conn, resolve({}))
    plan = design("sched", "corrupt_assignment") | {
        "experiment_type": "data",
        "parameters": {"rows": 2},
        "blast_radius": {"scope": "two rows", "targets": ["sched"], "max_rows": 5},
    }
    settings = settings_with_journal(tmp_path, parse_settings(toml))
    async with Client(build_server(settings), mode="legacy") as client:
        experiment_id = result_data(await client.call_tool("design_experiment", plan))["experiment_id"]
        result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
        refused = await inject(client, experiment_id, "sched")
        text = result_text(refused)
        assert refused.is_error and "'prod'" in text and "allow_production" in text, text
    with psycopg.connect(own_postgres.app_dsn) as conn:
        assert checksum(conn, resolve({})) == before  # the witness: not one row changed


async def test_an_approved_pause_of_the_test_redis_shows_the_production_tcp_target_busy(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    toml = "[policy]\nallow_production = true\n\n"
    toml += redis_target("cache", f"redis://localhost:{own_redis.port}/0", "test")
    toml += '[targets.prod_tcp]\nkind = "tcp"\nenvironment = "production"\n'
    toml += f'address = "127.0.0.1:{own_redis.port}"\n'
    callback = answering(approve=True)
    server = build_server(settings_with_journal(tmp_path, parse_settings(toml)))
    async with Client(server, mode="legacy", elicitation_callback=callback) as client:  # type: ignore[arg-type]
        # WRITE: reads still answer, so list_targets can ask the endpoint what it is during the pause
        # (a server paused for ALL answers nobody, and then the tcp target has no identity to show).
        plan = design("cache", "redis_timeout") | {"parameters": {"mode": "WRITE"}}
        experiment_id = result_data(await client.call_tool("design_experiment", plan))["experiment_id"]
        result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
        injected = result_data(await inject(client, experiment_id, "cache"))
        assert injected["approvals"] == ["approved by a person: shared_instance"]
        assert callback.asked and "'prod_tcp'" in callback.asked[0]
        listed = {t["name"]: t for t in result_data(await client.call_tool("list_targets", {}))["targets"]}
        assert listed["prod_tcp"]["busy_with"] == experiment_id
        result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
