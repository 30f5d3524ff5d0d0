"""Faults are keyed to the physical resource they touch, whatever the targets are called (issue 13).

Findings 1 (two names for one database) and 2 (a test Redis that also serves production).

Every check of "untouched" uses an independent witness: a psycopg connection of the test's own, or a
Redis client on the production side timing its own PINGs, never the server's bookkeeping.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
import psycopg
import pytest
import redis
from mcp import Client

from chaos_mcp.config import parse_settings
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, result_text, settings_with_journal
from tests.fixtures.services import PostgresDatabase, RedisServer
from tests.helpers import free_port

pytestmark = pytest.mark.anyio


def design(
    target: str, scenario: str, environment: str = "test", targets: list[str] | None = None
) -> dict[str, Any]:
    return {
        "experiment_type": "infrastructure",
        "target_component": target,
        "scenario": scenario,
        "hypothesis": f"When {target} fails, the application should degrade gracefully and recover.",
        "environment": environment,
        "blast_radius": {"scope": f"{target} only", "targets": targets or [target]},
        "duration": "30s",
        "rollback_plan": ["Revert the fault", "Verify the service answers normally"],
    }


async def baselined(
    client: Client, target: str, scenario: str, environment: str = "test", targets: list[str] | None = None
) -> str:
    plan = result_data(
        await client.call_tool("design_experiment", design(target, scenario, environment, targets))
    )
    result_data(await client.call_tool("measure_steady_state", {"experiment_id": plan["experiment_id"]}))
    return str(plan["experiment_id"])


async def inject(client: Client, experiment_id: str, target: str, environment: str = "test") -> Any:
    return await client.call_tool(
        "inject_failure",
        {"experiment_id": experiment_id, "environment": environment, "target_component": target},
    )


def allows_connections(database: PostgresDatabase) -> bool:
    with psycopg.connect(
        database.admin_dsn.replace(database.database, "postgres"), connect_timeout=3
    ) as conn:
        row = conn.execute("SELECT datallowconn FROM pg_database WHERE datname = %s", (database.database,))
        found = row.fetchone()
    assert found is not None
    return bool(found[0])


def postgres_target(name: str, dsn: str, environment: str = "test") -> str:
    return f'[targets.{name}]\nkind = "postgres"\nenvironment = "{environment}"\ndsn = "{dsn}"\n\n'


def redis_target(name: str, url: str, environment: str) -> str:
    return f'[targets.{name}]\nkind = "redis"\nenvironment = "{environment}"\nurl = "{url}"\n\n'


# ---------------------------------------------------------------- finding 1: two names, one database


async def test_a_second_name_for_a_blocked_database_is_refused_naming_the_experiment_that_holds_it(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    # Two spellings of one database: only the system's own identity can tell they are the same.
    other_spelling = own_postgres.admin_dsn.replace("127.0.0.1", "localhost")
    assert other_spelling != own_postgres.admin_dsn
    toml = postgres_target("dbkv", own_postgres.admin_dsn) + postgres_target("dbenc", other_spelling)
    # Each name's blast radius leaves the other out, so a person is asked (and approves) each time.
    server = build_server(settings_with_journal(tmp_path, parse_settings(toml)))
    async with Client(server, mode="legacy", elicitation_callback=answering(True)) as client:  # type: ignore[arg-type]
        first = await baselined(client, "dbkv", "db_connection_loss")
        second = await baselined(client, "dbenc", "db_connection_loss")
        result_data(await inject(client, first, "dbkv"))
        assert not allows_connections(own_postgres)

        listed = {t["name"]: t for t in result_data(await client.call_tool("list_targets", {}))["targets"]}
        assert listed["dbenc"]["busy_with"] == first  # the other name is busy through its database
        refused = await inject(client, second, "dbenc")
        text = result_text(refused)
        assert refused.is_error and first in text and "already under a fault" in text, text
        record = result_data(await client.call_tool("get_experiment", {"experiment_id": second}))
        assert record["state"] == "baselined" and record["faults"] == []
        record = result_data(await client.call_tool("get_experiment", {"experiment_id": first}))
        held = [e["data"]["resources"] for e in record["events"] if e["kind"] == "resources_held"]
        assert held and own_postgres.database in held[0][0]

        rollback = result_data(await client.call_tool("rollback", {"experiment_id": first}))
        assert rollback["status"] == "COMPLETE", rollback
        assert allows_connections(own_postgres)

        # The resource is free again: the other name may now use it, and its revert restores "allowed".
        result_data(await inject(client, second, "dbenc"))
        assert not allows_connections(own_postgres)
        result_data(await client.call_tool("rollback", {"experiment_id": second}))
    assert allows_connections(own_postgres)


async def test_two_databases_on_one_cluster_take_database_faults_side_by_side_and_list_as_sharing(
    tmp_path: Path, state_dir: Path, postgres_factory: Any
) -> None:
    first, second = postgres_factory(), postgres_factory()
    toml = postgres_target("orders", first.admin_dsn) + postgres_target(
        "billing", second.admin_dsn, "staging"
    )
    toml += '[targets.plan]\nkind = "schedule"\nenvironment = "test"\n'
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        listed = {t["name"]: t for t in result_data(await client.call_tool("list_targets", {}))["targets"]}
        assert listed["orders"]["shares_instance_with"] == ["billing"]
        assert listed["billing"]["shares_instance_with"] == ["orders"]
        assert listed["orders"]["identified_by"] == "system_identifier"
        assert listed["orders"]["resource"] != listed["billing"]["resource"]
        assert listed["plan"]["shares_instance_with"] == []
        resource = await client.read_resource("chaos://targets")
        shown = {t["name"]: t for t in json.loads(resource.contents[0].text)["targets"]}  # type: ignore[union-attr]
        assert shown["orders"]["shares_instance_with"] == ["billing"]

        # Blocking one database is not instance-wide: the neighbour of another environment is not
        # asked about, and a second experiment on the other database is not held up.
        ids = [await baselined(client, "orders", "db_connection_loss")]
        ids.append(await baselined(client, "billing", "db_connection_loss", "staging"))
        result_data(await inject(client, ids[0], "orders"))
        result_data(await inject(client, ids[1], "billing", "staging"))
        assert not allows_connections(first) and not allows_connections(second)
        for experiment_id in ids:
            result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
    assert allows_connections(first) and allows_connections(second)


# ------------------------------------------------ finding 2: one Redis server, two environments


class PingWitness:
    """A production-side client timing its own PINGs on its own connection, in a thread."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=2)
        self.slowest = 0.0
        self.pings = 0
        self.began: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.began = began = time.perf_counter()
            self.client.ping()
            self.slowest = max(self.slowest, time.perf_counter() - began)
            self.began = None
            self.pings += 1
            self._stop.wait(0.01)

    def wait_for_pings(self, count: int, within: float = 10.0) -> None:
        """Until `count` more PINGs were answered (each one a chance to see a pause)."""
        target, deadline = self.pings + count, time.monotonic() + within
        while self.pings < target:
            assert time.monotonic() < deadline, f"the witness got only {self.pings} answers"
            time.sleep(0.01)

    def wait_for_a_stalled_ping(self, at_least: float, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not (self.began is not None and time.perf_counter() - self.began > at_least):
            assert time.monotonic() < deadline, f"no PING stalled for {at_least}s"
            time.sleep(0.01)

    @contextmanager
    def watching(self) -> Iterator[PingWitness]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=15)
            self.client.close()


def shared_redis(tmp_path: Path, server: RedisServer, allow_production: bool = True) -> Any:
    base = f"redis://{server.host}:{server.port}"
    toml = f"[policy]\nallow_production = {str(allow_production).lower()}\n\n"
    toml += redis_target("cache", f"{base}/0", "test") + redis_target("prod", f"{base}/1", "production")
    return settings_with_journal(tmp_path, parse_settings(toml))


def answering(approve: bool) -> Any:
    asked: list[str] = []

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": approve})

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


async def test_a_pause_of_a_test_redis_that_also_serves_production_is_refused_without_approval(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    witness = PingWitness(f"redis://{own_redis.host}:{own_redis.port}/1")
    async with Client(build_server(shared_redis(tmp_path, own_redis)), mode="legacy") as client:
        listed = {t["name"]: t for t in result_data(await client.call_tool("list_targets", {}))["targets"]}
        assert listed["cache"]["shares_instance_with"] == ["prod"]
        assert listed["cache"]["identified_by"] == "run_id"
        plan = result_data(await client.call_tool("design_experiment", design("cache", "redis_timeout")))
        assert plan["reach"] == ["instance"]
        experiment_id = await baselined(client, "cache", "redis_timeout")
        with witness.watching():
            witness.wait_for_pings(5)
            refused = await inject(client, experiment_id, "cache")
            witness.wait_for_pings(30)  # a pause, had there been one, would stall these
        text = result_text(refused)
        assert refused.is_error and "'prod'" in text and "cannot ask" in text, text
        record = result_data(await client.call_tool("get_experiment", {"experiment_id": experiment_id}))
        assert record["state"] == "baselined" and record["faults"] == []
    assert witness.pings > 10 and witness.slowest < 0.25, (witness.pings, witness.slowest)


async def test_a_person_approving_lets_the_shared_instance_pause_through_and_the_witness_sees_it(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    callback = answering(approve=True)
    witness = PingWitness(f"redis://{own_redis.host}:{own_redis.port}/1")
    server = build_server(shared_redis(tmp_path, own_redis))
    async with Client(server, mode="legacy", elicitation_callback=callback) as client:  # type: ignore[arg-type]
        experiment_id = await baselined(client, "cache", "redis_timeout")
        with witness.watching():
            injected = result_data(await inject(client, experiment_id, "cache"))
            witness.wait_for_a_stalled_ping(0.5)
            result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))
        assert injected["approvals"] == ["approved by a person: shared_instance"]
        assert callback.asked and "'prod'" in callback.asked[0] and "production" in callback.asked[0]
    assert witness.slowest > 0.5, witness.slowest  # so the witness does see a pause when there is one


async def test_a_shared_instance_with_production_is_refused_outright_when_production_is_not_allowed(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    server = build_server(shared_redis(tmp_path, own_redis, allow_production=False))
    async with Client(server, mode="legacy", elicitation_callback=answering(True)) as client:  # type: ignore[arg-type]
        experiment_id = await baselined(client, "cache", "redis_timeout")
        refused = await inject(client, experiment_id, "cache")
        text = result_text(refused)
        assert refused.is_error and "allow_production" in text and "'prod'" in text, text


async def test_an_instance_wide_fault_is_refused_while_a_neighbour_cannot_be_identified(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    toml = redis_target("cache", own_redis.url, "test")
    toml += redis_target("elsewhere", f"redis://127.0.0.1:{free_port()}/0", "production")
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        listed = {t["name"]: t for t in result_data(await client.call_tool("list_targets", {}))["targets"]}
        assert "could not be identified" in listed["elsewhere"]["identity_unknown"]
        experiment_id = await baselined(client, "cache", "redis_timeout")
        refused = await inject(client, experiment_id, "cache")
        text = result_text(refused)
        assert refused.is_error and "'elsewhere'" in text and "cannot be ruled out" in text, text


async def test_a_test_redis_on_a_server_of_its_own_needs_no_approval(
    tmp_path: Path, state_dir: Path, redis_factory: Any
) -> None:
    mine, theirs = redis_factory(), redis_factory()
    toml = redis_target("cache", mine.url, "test") + redis_target("prod", theirs.url, "production")
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        listed = {t["name"]: t for t in result_data(await client.call_tool("list_targets", {}))["targets"]}
        assert listed["cache"]["shares_instance_with"] == []
        experiment_id = await baselined(client, "cache", "redis_timeout")
        injected = result_data(await inject(client, experiment_id, "cache"))
        assert injected["approvals"] == []
        result_data(await client.call_tool("rollback", {"experiment_id": experiment_id}))


async def test_a_second_pause_of_one_redis_server_under_another_name_is_refused_naming_the_first(
    tmp_path: Path, state_dir: Path, own_redis: RedisServer
) -> None:
    toml = redis_target("cache", f"redis://127.0.0.1:{own_redis.port}/0", "test")
    toml += redis_target("sessions", f"redis://localhost:{own_redis.port}/2", "test")
    server = build_server(settings_with_journal(tmp_path, parse_settings(toml)))
    async with Client(server, mode="legacy", elicitation_callback=answering(True)) as client:  # type: ignore[arg-type]
        first = await baselined(client, "cache", "redis_timeout")
        second = await baselined(client, "sessions", "redis_timeout")
        result_data(await inject(client, first, "cache"))
        began = time.monotonic()
        refused = await inject(client, second, "sessions")
        elapsed = time.monotonic() - began
        text = result_text(refused)
        # A paused server answers nobody, so its identity is the one last seen: enough to name the holder.
        assert refused.is_error and f"under a fault of experiment {first}" in text, text
        result_data(await client.call_tool("rollback", {"experiment_id": first}))
        assert not result_data(await client.call_tool("get_experiment", {"experiment_id": second}))["faults"]
    assert elapsed < 10, elapsed  # bounded: identity is asked with short timeouts
