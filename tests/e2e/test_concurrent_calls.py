"""Calls on one experiment that race each other (issue 13, the outside attacker's findings 1-3).

An injection is caught "in progress" by polling the journal until the experiment is `injected`
while its faults are still being prepared; the other call is made right then. Whether a fault is in
force is read by a psycopg connection of the test's own, never the server's bookkeeping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from chaos_mcp.config import parse_settings
from chaos_mcp.engine.core import Engine, EngineError
from tests.e2e.conftest import settings_with_journal
from tests.e2e.test_shared_resources import allows_connections, design, postgres_target
from tests.fixtures.services import PostgresDatabase

pytestmark = pytest.mark.anyio


async def baselined(engine: Engine, target: str) -> str:
    """Both names of the one database are in the blast radius, so no person need approve."""
    plan = engine.design(design(target, "db_connection_loss", targets=["dbkv", "dbenc"]))
    await engine.measure(plan["experiment_id"])
    return str(plan["experiment_id"])


async def when_injection_started(engine: Engine, experiment_id: str) -> None:
    """Until inject_failure has moved the experiment to `injected`, before its fault is written."""
    with anyio.fail_after(20):
        while (row := engine.journal.get_experiment(experiment_id)) is None or row.state != "injected":
            await anyio.sleep(0)
    assert engine.journal.faults(experiment_id) == [], "the race was missed: the fault is already written"


async def race(
    engine: Engine, experiment_id: str, target: str, other: Callable[[], Awaitable[Any]]
) -> tuple[Any, Any]:
    """inject_failure, and `other` as soon as the injection is in progress; both outcomes."""
    outcomes: list[Any] = [None, None]

    async def run(index: int, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            outcomes[index] = await call()
        except EngineError as exc:
            outcomes[index] = exc

    async def later() -> None:
        await when_injection_started(engine, experiment_id)
        await run(1, other)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, 0, lambda: engine.inject(experiment_id, "test", target))
        tg.start_soon(later)
    return outcomes[0], outcomes[1]


def two_names(tmp_path: Path, database: PostgresDatabase) -> Any:
    other_spelling = database.admin_dsn.replace("127.0.0.1", "localhost")
    toml = postgres_target("dbkv", database.admin_dsn) + postgres_target("dbenc", other_spelling)
    return settings_with_journal(tmp_path, parse_settings(toml))


async def test_rollback_during_an_injection_waits_for_it_and_never_frees_the_database_under_the_fault(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    async with Engine.running(two_names(tmp_path, own_postgres)) as engine:
        first = await baselined(engine, "dbkv")
        second = await baselined(engine, "dbenc")
        injected, rolled = await race(engine, first, "dbkv", lambda: engine.rollback(first))

        assert not isinstance(injected, EngineError), injected
        assert rolled["status"] == "COMPLETE" and rolled["steps"][0]["status"] != "NOT_INJECTED", rolled
        assert allows_connections(own_postgres), "rollback answered while the fault stayed in force"
        assert engine.journal.get_experiment(first).state == "rolled_back"  # type: ignore[union-attr]

        # The other name for the database now records the true previous setting: allowed.
        await engine.inject(second, "test", "dbenc")
        assert not allows_connections(own_postgres)
        record = engine.journal.faults(second)[0].record
        assert record["fields"]["previous_allow_connections"] is True, record
        await engine.rollback(second)
    assert allows_connections(own_postgres)


async def test_the_losing_one_of_two_identical_injections_leaves_the_winners_holds_in_place(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    async with Engine.running(two_names(tmp_path, own_postgres)) as engine:
        first = await baselined(engine, "dbkv")
        second = await baselined(engine, "dbenc")
        outcomes: list[Any] = []

        async def inject() -> None:
            try:
                outcomes.append(await engine.inject(first, "test", "dbkv"))
            except EngineError as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as tg:  # both admitted at once; one state change wins
            tg.start_soon(inject)
            tg.start_soon(inject)
        won, lost = sorted(outcomes, key=lambda o: isinstance(o, EngineError))

        assert not isinstance(won, EngineError), won
        assert isinstance(lost, EngineError) and "changed state meanwhile" in str(lost), lost
        assert not allows_connections(own_postgres)
        assert first in engine.journal.holds().values(), "the loser freed the winner's holds"
        with pytest.raises(EngineError, match=first):
            await engine.inject(second, "test", "dbenc")  # the database is still held by the winner
        await engine.rollback(first)
    assert allows_connections(own_postgres)


async def test_abort_all_during_an_injection_leaves_nothing_in_force_and_refuses_further_injection(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    async with Engine.running(two_names(tmp_path, own_postgres)) as engine:
        first = await baselined(engine, "dbkv")
        second = await baselined(engine, "dbenc")
        injected, aborted = await race(engine, first, "dbkv", lambda: engine.abort_all("stop now"))

        assert aborted["armed"] is False and aborted["still_in_force"] == [], aborted
        assert allows_connections(own_postgres), "the injection completed after the kill switch"
        state = engine.journal.get_experiment(first).state  # type: ignore[union-attr]
        assert state in ("aborted", "failed"), (state, injected)
        with pytest.raises(EngineError, match="kill switch"):
            await engine.inject(second, "test", "dbenc")
        assert allows_connections(own_postgres)


async def test_rollback_from_another_server_during_an_injection_stops_it_before_any_fault_is_written(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    settings = two_names(tmp_path, own_postgres)  # two engines on one journal: two servers' view
    async with Engine.running(settings) as injecting, Engine.running(settings) as other:
        first = await baselined(injecting, "dbkv")
        injected, rolled = await race(injecting, first, "dbkv", lambda: other.rollback(first))

        assert isinstance(injected, EngineError) and "stopped while it was being injected" in str(injected)
        assert "nothing was injected" in rolled["note"], rolled
        assert injecting.journal.get_experiment(first).state == "failed"  # type: ignore[union-attr]
        assert injecting.journal.faults(first) == [] and injecting.journal.holds() == {}
        assert allows_connections(own_postgres)
