"""The infrastructure scenarios through the MCP tools, each failure seen by an independent client."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from mcp import Client

from chaos_mcp.config import parse_settings
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, settings_with_journal
from tests.fixtures.services import PostgresDatabase, RedisServer

pytestmark = pytest.mark.anyio


def design(target: str, scenario: str, **extra: Any) -> dict[str, Any]:
    return {
        "experiment_type": "infrastructure",
        "target_component": target,
        "scenario": scenario,
        "hypothesis": f"When {target} fails, the application should degrade gracefully and recover.",
        "environment": "test",
        "blast_radius": {"scope": f"{target} test instance only", "targets": [target]},
        "duration": "30s",
        "rollback_plan": ["Revert the fault", "Verify the service answers normally"],
        **extra,
    }


async def run_until_injected(client: Client, target: str, scenario: str, **extra: Any) -> str:
    plan = result_data(await client.call_tool("design_experiment", design(target, scenario, **extra)))
    experiment_id = plan["experiment_id"]
    baseline = result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))
    assert baseline["steady"], baseline["verdicts"]
    result_data(
        await client.call_tool(
            "inject_failure",
            {"experiment_id": experiment_id, "environment": "test", "target_component": target},
        )
    )
    return str(experiment_id)


def database_settings(own_postgres: PostgresDatabase) -> dict[str, Any]:
    with psycopg.connect(own_postgres.admin_dsn) as conn:
        row = conn.execute(
            "SELECT datallowconn, datconnlimit FROM pg_database WHERE datname = %s", (own_postgres.database,)
        ).fetchone()
    assert row is not None
    return {"allow": row[0], "limit": row[1]}


async def test_db_connection_loss_refuses_new_connections_until_rollback(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    before = database_settings(own_postgres)
    app = psycopg.connect(own_postgres.app_dsn, autocommit=True)
    toml = f'[targets.db]\nkind = "postgres"\nenvironment = "test"\ndsn = "{own_postgres.admin_dsn}"\n'
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        experiment_id = await run_until_injected(client, "db", "db_connection_loss")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(own_postgres.app_dsn, connect_timeout=2).close()
        with pytest.raises(psycopg.OperationalError):
            app.execute("SELECT 1")
        rollback = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
        assert rollback["status"] == "COMPLETE", rollback
    with psycopg.connect(own_postgres.app_dsn, connect_timeout=2) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert database_settings(own_postgres) == before


async def test_redis_timeout_stalls_gets_until_rollback(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    toml = f'[targets.cache]\nkind = "redis"\nenvironment = "test"\nurl = "{own_redis.url}"\n'
    observer = redis.Redis.from_url(own_redis.url, socket_timeout=0.1)
    observer.set("k", "v")
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        experiment_id = await run_until_injected(client, "cache", "redis_timeout")
        with pytest.raises(redis.exceptions.TimeoutError):
            redis.Redis.from_url(own_redis.url, socket_timeout=0.1).get("k")
        rollback = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
        assert rollback["status"] == "COMPLETE", rollback
    fresh = redis.Redis.from_url(own_redis.url, socket_timeout=1)
    fresh.ping()
    began = time.perf_counter()
    assert fresh.get("k") == b"v"
    assert time.perf_counter() - began < 0.005


async def test_memory_pressure_holds_the_ballast_until_rollback(tmp_path: Path, state_dir: Path) -> None:
    toml = '[targets.app]\nkind = "process"\nenvironment = "test"\nmax_memory_mb = 512\n'
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        too_big = await client.call_tool(
            "design_experiment", design("app", "memory_pressure", parameters={"size_mb": 4096})
        )
        assert too_big.is_error
        experiment_id = await run_until_injected(client, "app", "memory_pressure", parameters={"size_mb": 64})
        record = result_data(await client.call_tool("get_experiment", {"experiment_id": experiment_id}))
        assert record["faults"][0]["status"] == "injected"
        rollback = result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
        assert (
            rollback["status"] == "COMPLETE"
            and rollback["steps"][0]["detail"] == "reverted and verified gone"
        )
