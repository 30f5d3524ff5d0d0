"""The reference schema, its seed, the loader through a mapping, and the data probe."""

from __future__ import annotations

import psycopg
import pytest

from chaos_mcp.data.schema import migrate, seed
from chaos_mcp.data.source import load_postgres_program
from chaos_mcp.probes.base import ProbeError
from chaos_mcp.probes.data import DataProbe
from chaos_mcp.schedule.errors import ScheduleError
from chaos_mcp.schedule.synthetic import generate
from chaos_mcp.schedule.validate import validate_program
from tests.fixtures.services import PostgresDatabase

from .helpers import checksums, data_fault, target

pytestmark = pytest.mark.anyio
RENAMED = {
    "assignments": {"table": "rota.shifts", "person_id": "staff", "block_id": "slot"},
    "people": {"table": "rota.staff", "name": "full_name"},
}


def test_migrate_is_idempotent_and_seed_writes_the_synthetic_program(seeded_module: PostgresDatabase) -> None:
    before = checksums(seeded_module.app_dsn)
    migrate(seeded_module.app_dsn)
    assert checksums(seeded_module.app_dsn) == before
    counts = seed(seeded_module.app_dsn, generate(seed=7))
    assert counts == {
        "people": 29,
        "blocks": 56,
        "services": 5,
        "assignments": 832,
        "absences": 2,
        "credentials": 36,
    }
    assert checksums(seeded_module.app_dsn) == before


def test_the_loader_reads_back_the_program_that_was_seeded(seeded_module: PostgresDatabase) -> None:
    loaded = load_postgres_program(target(seeded_module.app_dsn, {}))
    original = generate(seed=7)
    assert (loaded.start, loaded.days) == (original.start, original.days)
    assert loaded.faculty == original.faculty and loaded.residents == original.residents
    assert set(loaded.services) == set(original.services) and loaded.absences == original.absences
    assert loaded.assignments == original.assignments
    assert set(loaded.credentials) == set(original.credentials)
    assert validate_program(loaded) == []


def test_the_loader_refuses_a_bad_mapping_with_a_schedule_error_naming_it(
    seeded_module: PostgresDatabase,
) -> None:
    with pytest.raises(ScheduleError, match="table 'nope' \\(logical blocks\\) does not exist"):
        load_postgres_program(target(seeded_module.app_dsn, {"blocks": {"table": "nope"}}))
    with pytest.raises(ScheduleError, match="has no table mapping"):
        load_postgres_program(target(seeded_module.app_dsn, None))


async def test_a_database_with_other_names_works_through_its_mapping(seeded: PostgresDatabase) -> None:
    with psycopg.connect(seeded.app_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA rota")
        conn.execute("ALTER TABLE assignments SET SCHEMA rota")
        conn.execute("ALTER TABLE rota.assignments RENAME TO shifts")
        conn.execute("ALTER TABLE rota.shifts RENAME COLUMN person_id TO staff")
        conn.execute("ALTER TABLE rota.shifts RENAME COLUMN block_id TO slot")
        conn.execute("ALTER TABLE people SET SCHEMA rota")
        conn.execute("ALTER TABLE rota.people RENAME TO staff")
        conn.execute("ALTER TABLE rota.staff RENAME COLUMN name TO full_name")
    assert len(load_postgres_program(target(seeded.app_dsn, RENAMED)).assignments) == 832
    probe = DataProbe("schedule", target(seeded.app_dsn, RENAMED))
    baseline = {m.metric: m.value for m in await probe.sample()}
    fault = data_fault("duplicate_shift", seeded.app_dsn, rows=3, seed=1)
    fault.mapping = {
        **{k: v for k, v in fault.mapping.items()},
        "assignments": fault.mapping["assignments"] | RENAMED["assignments"],
        "people": fault.mapping["people"] | RENAMED["people"],
    }
    await fault.prepare()
    await fault.inject()
    during = {m.metric: m.value for m in await probe.sample()}
    assert during["overlaps"] == 3 and during["checksum"] != baseline["checksum"]
    await fault.revert()
    assert {m.metric: m.value for m in await probe.sample()} == baseline


async def test_the_data_probe_sees_each_corruption_while_it_is_active(
    seeded_module: PostgresDatabase,
) -> None:
    probe = DataProbe("schedule", target(seeded_module.app_dsn, {}))
    baseline = {m.metric: m.value for m in await probe.sample()}
    assert baseline["invalid_rows"] == 0 and baseline["error_rate"] == 0
    cases = [
        ("corrupt_assignment", {"kinds": ["dangling_person"]}, "dangling_refs"),
        ("corrupt_assignment", {"kinds": ["impossible_block"]}, "impossible_blocks"),
        ("corrupt_assignment", {"kinds": ["missing_role"]}, "missing_roles"),
        ("corrupt_assignment", {"kinds": ["onto_absence"]}, "absence_conflicts"),
        ("duplicate_shift", {}, "overlaps"),
    ]
    for kind, fields, metric in cases:
        fault = data_fault(kind, seeded_module.app_dsn, rows=2, seed=3, **fields)
        await fault.prepare()
        await fault.inject()
        during = {m.metric: m for m in await probe.sample()}
        assert during[metric].value == 2, (kind, fields)
        assert during[metric].note.startswith("assignments ")
        await fault.revert()
    fault = data_fault("missing_credential", seeded_module.app_dsn, rows=2, seed=3, kinds=["removed"])
    await fault.prepare()
    await fault.inject()
    assert {m.metric: m.value for m in await probe.sample()}["credential_gaps"] > 0
    await fault.revert()
    assert {m.metric: m.value for m in await probe.sample()} == baseline


async def test_the_data_probe_reports_an_unreachable_database_as_errors_and_refuses_bad_config() -> None:
    probe = DataProbe("schedule", target("postgresql://x:pw-secret-1@127.0.0.1:1/none", {}))
    values = {m.metric: m for m in await probe.sample()}
    assert values["error_rate"].value == 1.0 and "pw-secret-1" not in values["error_rate"].note
    with pytest.raises(ProbeError, match="source = 'postgres'"):
        DataProbe("schedule", target("postgresql://127.0.0.1/x", {}, source="synthetic"))
    with pytest.raises(ProbeError, match="no table mapping"):
        DataProbe("schedule", target("postgresql://127.0.0.1/x", None))
