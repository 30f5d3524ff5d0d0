"""Every fault family ends by its deadline when the server is SIGKILLed right after inject_failure."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
import redis
from mcp import Client

from chaos_mcp.engine.journal import Journal
from tests.e2e.conftest import result_data
from tests.e2e.serving import serve_params, server_pid
from tests.fixtures.services import PostgresDatabase, RedisServer
from tests.helpers import proxied_target_toml

pytestmark = pytest.mark.anyio
WINDOW = "4s"


def design(target: str, scenario: str, **parameters: Any) -> dict[str, Any]:
    return {
        "experiment_type": "infrastructure",
        "target_component": target,
        "scenario": scenario,
        "hypothesis": f"When {target} fails, the application should recover once it is back.",
        "environment": "test",
        "blast_radius": {"scope": "test instance only", "targets": [target]},
        "duration": WINDOW,
        "rollback_plan": ["Revert the fault", "Verify the service"],
        "parameters": parameters,
    }


async def inject_and_kill(tmp_path: Path, state: Path, toml: str, plan: dict[str, Any]) -> tuple[str, float]:
    config = tmp_path / "chaos.toml"
    config.write_text(toml)
    pid_file = tmp_path / "server.pid"
    async with Client(serve_params(state, pid_file, config), mode="legacy") as client:
        experiment_id = result_data(await client.call_tool("design_experiment", plan))["experiment_id"]
        assert result_data(await client.call_tool("measure_steady_state", {"experiment_id": experiment_id}))[
            "steady"
        ]
        injected = result_data(
            await client.call_tool(
                "inject_failure",
                {
                    "experiment_id": experiment_id,
                    "environment": "test",
                    "target_component": plan["target_component"],
                },
            )
        )
        os.kill(server_pid(pid_file), signal.SIGKILL)
    return str(experiment_id), datetime.fromisoformat(injected["deadline"]).timestamp()


async def gone_by(deadline: float, fault_active: Callable[[], bool]) -> None:
    with anyio.fail_after(max(0.1, deadline + 1.0 - time.time())):
        while fault_active():
            await anyio.sleep(0.05)


async def test_postgres_block_ends_by_its_deadline(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    toml = f'[targets.db]\nkind = "postgres"\nenvironment = "test"\ndsn = "{own_postgres.admin_dsn}"\n'
    _, deadline = await inject_and_kill(tmp_path, state_dir, toml, design("db", "db_connection_loss"))

    def blocked() -> bool:
        try:
            psycopg.connect(own_postgres.app_dsn, connect_timeout=1).close()
        except psycopg.OperationalError:
            return True
        return False

    assert blocked()
    await gone_by(deadline, blocked)


async def test_redis_pause_ends_by_its_deadline(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    toml = f'[targets.cache]\nkind = "redis"\nenvironment = "test"\nurl = "{own_redis.url}"\n'
    _, deadline = await inject_and_kill(tmp_path, state_dir, toml, design("cache", "redis_timeout"))

    def paused() -> bool:
        try:
            redis.Redis.from_url(own_redis.url, socket_timeout=0.1).get("k")
        except redis.exceptions.TimeoutError:
            return True
        return False

    assert paused()
    await gone_by(deadline, paused)


async def test_memory_ballast_ends_by_its_deadline(tmp_path: Path, state_dir: Path) -> None:
    toml = '[targets.app]\nkind = "process"\nenvironment = "test"\nmax_memory_mb = 256\n'
    experiment_id, deadline = await inject_and_kill(
        tmp_path, state_dir, toml, design("app", "memory_pressure", size_mb=32)
    )
    journal = Journal(f"sqlite:///{state_dir / 'journal.sqlite3'}")
    tag = journal.faults(experiment_id)[0].record["fields"]["tag"]  # the pid is known only after inject
    journal.close()

    def alive() -> bool:
        found = subprocess.run(["pgrep", "-f", tag], capture_output=True, text=True, check=False)
        return bool(found.stdout.split())

    assert alive()
    await gone_by(deadline, alive)


async def test_proxy_toxic_ends_by_its_deadline(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer, proxy_port: int
) -> None:
    fields = f'kind = "redis"\nenvironment = "test"\nurl = "{own_redis.url}"\n'
    toml, listen = proxied_target_toml(proxy_port, "cache", fields, own_redis.port)
    _, deadline = await inject_and_kill(
        tmp_path, state_dir, toml, design("cache", "network_latency", latency_ms=400)
    )

    def slow() -> bool:
        client = redis.Redis(host="127.0.0.1", port=listen, socket_timeout=5)
        began = time.perf_counter()
        client.ping()
        return time.perf_counter() - began >= 0.4

    assert slow()
    await gone_by(deadline, slow)
