"""Exact restore keeps the application's writes: other rows keep them, touched rows become conflicts."""

from __future__ import annotations

import json

import psycopg
import pytest

from chaos_mcp.data.errors import RestoreConflict
from tests.fixtures.services import PostgresDatabase

from .helpers import checksums, data_fault, revert_in_fresh_process

pytestmark = pytest.mark.anyio


async def test_a_concurrent_writer_keeps_its_rows_and_its_touched_row_is_reported_as_a_conflict(
    seeded: PostgresDatabase,
) -> None:
    fault = data_fault("corrupt_assignment", seeded.admin_dsn, rows=4, seed=11, kinds=["missing_role"])
    await fault.prepare()
    touched = [int(c["key"]) for c in fault.changes]
    await fault.inject()
    with psycopg.connect(seeded.app_dsn, autocommit=True) as app:  # the application, as its own role
        other = app.execute(
            "SELECT id FROM assignments WHERE id <> ALL(%s) ORDER BY id LIMIT 2", (touched,)
        ).fetchall()
        others = [int(r[0]) for r in other]
        app.execute("UPDATE assignments SET hours = 7.5 WHERE id = ANY(%s)", (others,))
        app.execute("UPDATE assignments SET role = 'backup' WHERE id = %s", (touched[0],))
        app.execute(
            "INSERT INTO assignments (person_id, block_id, service_id, role) "
            "VALUES ('R001', 3, 'clinic', 'primary')"
        )

    with pytest.raises(RestoreConflict) as caught:
        await fault.revert()

    assert [c["key"] for c in caught.value.conflicts] == [str(touched[0])]
    assert caught.value.conflicts[0]["reason"] == "the row was changed by someone else"
    assert f"assignments {touched[0]}" in str(caught.value) and "never overwritten" in str(caught.value)
    assert fault.conflicts == caught.value.conflicts
    with psycopg.connect(seeded.admin_dsn) as conn:
        hours = conn.execute("SELECT hours FROM assignments WHERE id = ANY(%s)", (others,)).fetchall()
        assert [h for (h,) in hours] == [7.5, 7.5]
        role = conn.execute("SELECT role FROM assignments WHERE id = %s", (touched[0],)).fetchone()
        assert role == ("backup",)
        restored = conn.execute(
            "SELECT to_jsonb(a)::text FROM assignments a WHERE id = ANY(%s) ORDER BY id", (touched[1:],)
        ).fetchall()
    befores = {int(c["key"]): json.loads(c["before"]) for c in fault.changes}
    assert [json.loads(r) for (r,) in restored] == [befores[k] for k in sorted(touched[1:])]
    with pytest.raises(RestoreConflict):  # idempotent: the conflict stays until a person settles it
        await fault.revert()
    assert not await fault.verify()


async def test_a_row_the_application_deleted_during_the_window_is_a_conflict_not_resurrected(
    seeded: PostgresDatabase,
) -> None:
    fault = data_fault("duplicate_shift", seeded.admin_dsn, rows=2, seed=5)
    await fault.prepare()
    await fault.inject()
    updated = fault.changes[0]["key"]
    with psycopg.connect(seeded.admin_dsn, autocommit=True) as app:
        app.execute("UPDATE assignments SET hours = 3 WHERE id = %s", (int(updated),))
    with pytest.raises(RestoreConflict) as caught:
        await fault.revert()
    assert [c["key"] for c in caught.value.conflicts] == [updated]
    with psycopg.connect(seeded.admin_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM assignments WHERE id = %s", (int(updated),)).fetchone() == (
            1,
        )
        gone = conn.execute("SELECT count(*) FROM assignments WHERE id = %s", (int(fault.changes[1]["key"]),))
        assert gone.fetchone() == (0,)


async def test_revert_from_a_fresh_process_with_only_the_record_restores_exactly(
    seeded: PostgresDatabase,
) -> None:
    original = checksums(seeded.admin_dsn)
    faults, records = [], []
    for n, kind in enumerate(("corrupt_assignment", "duplicate_shift", "missing_credential")):
        fault = data_fault(kind, seeded.admin_dsn, rows=5, seed=2, tag=f"x{n}")
        await fault.prepare()
        records.append(json.loads(json.dumps(fault.to_record())))  # what the journal holds, pre-inject
        await fault.inject()
        faults.append(fault)
    assert checksums(seeded.admin_dsn) != original
    done = revert_in_fresh_process(*records, *records)  # twice over: revert is idempotent
    assert done.returncode == 0, done.stderr
    assert checksums(seeded.admin_dsn) == original
    for fault in faults:
        assert not await fault.verify()


async def test_revert_of_a_prepared_but_never_injected_fault_changes_nothing(
    seeded: PostgresDatabase,
) -> None:
    original = checksums(seeded.admin_dsn)
    fault = data_fault("missing_credential", seeded.admin_dsn, rows=3, seed=1)
    await fault.prepare()
    await fault.revert()
    assert checksums(seeded.admin_dsn) == original


async def test_a_conflict_in_a_fresh_process_exits_with_the_conflict_named(seeded: PostgresDatabase) -> None:
    fault = data_fault("missing_credential", seeded.app_dsn, rows=2, seed=4, kinds=["expired"])
    await fault.prepare()
    record = fault.to_record()
    await fault.inject()
    key = int(fault.changes[0]["key"])
    with psycopg.connect(seeded.admin_dsn, autocommit=True) as app:
        app.execute("UPDATE credentials SET expires = '2030-01-01' WHERE id = %s", (key,))
    done = revert_in_fresh_process(record)
    assert done.returncode != 0
    assert "RestoreConflict" in done.stderr and f"credentials {key}" in done.stderr
    assert seeded.password not in done.stderr
