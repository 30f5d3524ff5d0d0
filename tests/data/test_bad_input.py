"""Bad input is refused with a clear message before anything is touched."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from chaos_mcp.config import Settings
from chaos_mcp.contract import BlastRadius, ValidationProblems
from chaos_mcp.data.errors import DataError, MappingError
from chaos_mcp.data.mapping import default_mapping, resolve
from chaos_mcp.scenarios.base import DEFAULT_SCENARIO, ScenarioContext, scenarios
from tests.fixtures.services import PostgresDatabase

from .helpers import checksums, data_fault, target

pytestmark = pytest.mark.anyio
DATA_SCENARIOS = ("corrupt_assignment", "duplicate_shift", "missing_credential")


def context(name: str, dsn: str, blast: dict[str, Any], **parameters: Any) -> ScenarioContext:
    scenario = scenarios()[name]
    t = target(dsn, {})
    return ScenarioContext(
        experiment_id="exp-1",
        target_name="schedule",
        target=t,
        settings=Settings(targets={"schedule": t}),
        parameters=scenario.Parameters.model_validate(parameters),
        blast_radius=BlastRadius(scope="two rows", **blast).model_dump(mode="json"),
        deadline=time.time() + 60,
        duration=60,
    )


def test_the_data_scenarios_are_registered_as_data_mutating_schedule_chaos() -> None:
    catalogue = scenarios()
    assert DEFAULT_SCENARIO[("data", "schedule")] == "corrupt_assignment"
    for name in DATA_SCENARIOS:
        scenario = catalogue[name]
        assert scenario.experiment_type == "data" and scenario.mutates_data
        assert scenario.target_kinds == frozenset({"schedule"})
        assert "row by row" in scenario.describe()["automatic_revert"]


def test_a_mapping_naming_missing_tables_and_columns_is_refused_naming_each(
    seeded_module: PostgresDatabase,
) -> None:
    original = checksums(seeded_module.admin_dsn)
    mapping = {"assignments": {"table": "shifts"}, "people": {"name": "full_name", "kind": "sort"}}
    problems = scenarios()["corrupt_assignment"].check_target(
        "schedule", target(seeded_module.admin_dsn, mapping)
    )
    text = "\n".join(problems)
    assert "table 'shifts' (logical assignments) does not exist" in text
    assert "'full_name' (logical name)" in text and "'sort' (logical kind)" in text
    with pytest.raises(MappingError) as caught:
        fault = data_fault("corrupt_assignment", seeded_module.admin_dsn)
        fault.mapping = {k: v for k, v in default_mapping().items()} | {"credentials": {"table": "creds"}}
        await_prepare(fault)
    assert "table 'creds' (logical credentials) does not exist" in str(caught.value)
    assert "Nothing was touched" in str(caught.value)
    assert checksums(seeded_module.admin_dsn) == original


def await_prepare(fault: Any) -> None:
    import anyio

    anyio.run(fault.prepare)


def test_unknown_logical_tables_and_columns_are_refused_listing_what_is_accepted() -> None:
    with pytest.raises(MappingError) as caught:
        resolve({"shifts": {"table": "x"}, "assignments": {"person": "staff_id", "role": ""}})
    text = str(caught.value)
    assert "unknown logical table 'shifts'; accepted: people, blocks" in text
    assert "assignments: unknown logical column 'person'; accepted: table, id, person_id" in text
    assert "assignments.role: expected a plain name" in text


def test_a_target_without_a_mapping_or_not_on_postgres_is_refused_at_design(
    seeded_module: PostgresDatabase,
) -> None:
    scenario = scenarios()["duplicate_shift"]
    no_mapping = scenario.check_target("schedule", target(seeded_module.admin_dsn, None))
    assert len(no_mapping) == 1 and "has no table mapping" in no_mapping[0]
    assert "[targets.NAME.mapping]" in no_mapping[0]
    synthetic = scenario.check_target("schedule", target(seeded_module.admin_dsn, {}, source="synthetic"))
    assert "source = 'synthetic'" in synthetic[0] and "source = 'postgres'" in synthetic[0]
    no_dsn = scenario.check_target("schedule", target("", {}).model_copy(update={"dsn": None}))
    assert "needs dsn" in no_dsn[0]
    assert scenario.check_target("schedule", target(seeded_module.admin_dsn, {})) == []
    with pytest.raises(DataError, match="has no table mapping"):
        resolve(None)


def test_an_unreachable_database_is_a_design_problem_without_the_password() -> None:
    dsn = "postgresql://someone:hunter2-secret@127.0.0.1:1/nowhere"
    problems = scenarios()["missing_credential"].check_target("schedule", target(dsn, {}))
    assert problems and "cannot connect" in problems[0] and "hunter2-secret" not in problems[0]


@pytest.mark.parametrize("max_rows", [0, 10_001])
def test_a_max_rows_of_zero_or_beyond_the_limit_is_refused(max_rows: int) -> None:
    with pytest.raises(ValidationError, match="max_rows"):
        BlastRadius(scope="x", max_rows=max_rows)


@pytest.mark.parametrize("rows", [0, 10_001])
def test_a_row_count_of_zero_or_beyond_the_hard_limit_is_refused(rows: int) -> None:
    for name in DATA_SCENARIOS:
        with pytest.raises(ValidationError, match="rows"):
            scenarios()[name].Parameters.model_validate({"rows": rows})


def test_more_rows_than_max_rows_or_no_max_rows_is_refused_when_the_faults_are_built(
    seeded_module: PostgresDatabase,
) -> None:
    scenario = scenarios()["corrupt_assignment"]
    with pytest.raises(ValidationProblems) as caught:
        scenario.build(context("corrupt_assignment", seeded_module.admin_dsn, {"max_rows": 2}, rows=3))
    assert "parameters.rows: 3 rows exceed blast_radius.max_rows = 2" in str(caught.value)
    with pytest.raises(ValidationProblems) as caught:
        scenario.build(context("corrupt_assignment", seeded_module.admin_dsn, {}, rows=1))
    assert "blast_radius.max_rows: corrupt_assignment changes data: set blast_radius.max_rows" in str(
        caught.value
    )
    blast = {"max_rows": 2, "rotations": ["clinic"], "blocks": ["0-9"]}
    (fault,) = scenario.build(context("corrupt_assignment", seeded_module.admin_dsn, blast, rows=2))
    assert fault.to_record()["fields"]["rotations"] == ["clinic"]


async def test_too_few_rows_in_the_blast_radius_is_refused_before_anything_is_touched(
    seeded_module: PostgresDatabase,
) -> None:
    original = checksums(seeded_module.admin_dsn)
    fault = data_fault(
        "corrupt_assignment", seeded_module.admin_dsn, rows=50, kinds=["onto_absence"], blocks=["2"]
    )
    with pytest.raises(DataError, match="only 0 qualify in the blast radius"):
        await fault.prepare()
    bad = data_fault("duplicate_shift", seeded_module.admin_dsn, rows=1, blocks=["tuesday"])
    with pytest.raises(DataError, match="accepted: a block number"):
        await bad.prepare()
    assert checksums(seeded_module.admin_dsn) == original


async def test_the_blast_radius_limits_which_rows_change(seeded_module: PostgresDatabase) -> None:
    fault = data_fault(
        "corrupt_assignment",
        seeded_module.admin_dsn,
        rows=6,
        kinds=["missing_role"],
        rotations=["clinic"],
        blocks=["2025-07-02"],
    )
    await fault.prepare()
    with psycopg.connect(seeded_module.admin_dsn) as conn:
        rows = conn.execute(
            "SELECT service_id, block_id FROM assignments WHERE id = ANY(%s)",
            ([int(c["key"]) for c in fault.changes],),
        ).fetchall()
    assert len(rows) == 6 and {s for s, _ in rows} == {"clinic"} and {b for _, b in rows} <= {2, 3}


async def test_a_row_changed_between_snapshot_and_injection_aborts_the_whole_injection(
    seeded: PostgresDatabase,
) -> None:
    original = checksums(seeded.admin_dsn)
    fault = data_fault("corrupt_assignment", seeded.admin_dsn, rows=4, kinds=["missing_role"], seed=9)
    await fault.prepare()
    with psycopg.connect(seeded.admin_dsn, autocommit=True) as app:
        app.execute("UPDATE assignments SET hours = 5 WHERE id = %s", (int(fault.changes[-1]["key"]),))
    moved = checksums(seeded.admin_dsn)
    with pytest.raises(DataError, match="changed between the snapshot and the injection"):
        await fault.inject()
    assert checksums(seeded.admin_dsn) == moved != original
    assert not await fault.verify()
