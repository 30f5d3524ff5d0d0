"""Property: any random mutation set, injected then restored, leaves every table exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos_mcp.data.errors import DataError
from chaos_mcp.data.plan import CORRUPT_KINDS, CREDENTIAL_KINDS
from tests.fixtures.services import PostgresDatabase

from .helpers import checksums, data_fault

SERVICES = ["inpatient", "clinic", "procedures", "obstetrics", "elective"]
ROWS = {"corrupt_assignment": 16, "duplicate_shift": 16, "missing_credential": 6}


@pytest.fixture(scope="module")
def observer(seeded_module: PostgresDatabase) -> Iterator[psycopg.Connection[Any]]:
    """One autocommit connection that reads checksums for every example."""
    with psycopg.connect(seeded_module.admin_dsn, autocommit=True) as conn:
        yield conn


@st.composite
def mutation_sets(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(ROWS)))
    fields: dict[str, Any] = {
        "kind": kind,
        "rows": draw(st.integers(1, ROWS[kind])),
        "seed": draw(st.integers(0, 2**31)),
    }
    if kind == "corrupt_assignment":
        fields["kinds"] = draw(st.lists(st.sampled_from(CORRUPT_KINDS), min_size=1, unique=True))
    if kind == "missing_credential":
        fields["kinds"] = draw(st.lists(st.sampled_from(CREDENTIAL_KINDS), min_size=1, unique=True))
    if kind != "missing_credential" and "onto_absence" not in fields.get("kinds", []):
        fields["rotations"] = draw(
            st.none() | st.lists(st.sampled_from(SERVICES[:2]), min_size=1, unique=True)
        )
    return fields


@settings(max_examples=200, deadline=None, database=None)
@given(mutation=mutation_sets(), revert_twice=st.booleans())
def test_every_random_mutation_set_restores_the_touched_tables_checksums_exactly(
    seeded_module: PostgresDatabase,
    observer: psycopg.Connection[Any],
    mutation: dict[str, Any],
    revert_twice: bool,
) -> None:
    dsn, db = seeded_module.admin_dsn, observer
    original = checksums(db)
    kind = mutation.pop("kind")
    fault = data_fault(kind, dsn, **mutation)

    async def run() -> None:
        await fault.prepare()
        assert len(fault.changes) == mutation["rows"]
        assert fault.table_checksums == {t: original[t] for t in fault.table_checksums}
        await fault.inject()
        assert await fault.verify()
        during = checksums(db, tuple(fault.table_checksums))
        assert all(during[t] != original[t] for t in fault.table_checksums)
        await fault.revert()
        if revert_twice:
            await fault.revert()
        assert not await fault.verify()

    try:
        anyio.run(run)
    except DataError as exc:  # too few rows qualify: refused before anything was touched
        assert "qualify" in str(exc)
        assert checksums(db) == original
        return
    after = checksums(db)
    assert {t: after[t] for t in fault.table_checksums} == fault.table_checksums
    assert after == original
