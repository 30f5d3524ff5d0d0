"""A data fault changes nothing unless every statement its restore needs can run (issue 13, finding 11).

Each case builds an obstacle in the test's own database, then checks that the fault is refused
with the reason, as not injected (NotInjected), and that an independent checksum of every table
is unchanged. A plain auto-updatable view is the control: it must not be refused.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from chaos_mcp.data.errors import NotApplied
from chaos_mcp.data.mapping import default_mapping
from chaos_mcp.faults.base import NotInjected
from tests.fixtures.services import PostgresDatabase

from .helpers import checksums, data_fault

pytestmark = pytest.mark.anyio

OBSTACLES = {
    "computed_view": (
        ["CREATE VIEW certs AS SELECT id, person_id, name, expires, upper(name) AS label FROM credentials"],
        "certs",
        "label",
    ),
    "join_view": (
        [
            "CREATE VIEW certs AS SELECT c.id, c.person_id, c.name, c.expires FROM credentials c "
            "JOIN people p ON p.id = c.person_id"
        ],
        "certs",
        "not auto-updatable",
    ),
    "instead_of_trigger": (
        [
            "CREATE VIEW certs AS SELECT c.id, c.person_id, c.name, c.expires FROM credentials c "
            "JOIN people p ON p.id = c.person_id",
            "CREATE FUNCTION certs_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
            "CREATE TRIGGER certs_write INSTEAD OF INSERT OR UPDATE OR DELETE ON certs "
            "FOR EACH ROW EXECUTE FUNCTION certs_write()",
        ],
        "certs",
        "INSTEAD OF trigger(s) certs_write",
    ),
    "rule": (
        ["CREATE RULE keep_credentials AS ON DELETE TO credentials DO INSTEAD NOTHING"],
        "credentials",
        "rule(s) keep_credentials",
    ),
}


def mapping_for(table: str) -> dict[str, dict[str, str]]:
    mapping = default_mapping()
    mapping["credentials"]["table"] = table
    return mapping


@pytest.mark.parametrize("obstacle", sorted(OBSTACLES))
async def test_a_relation_whose_restore_could_not_run_is_refused_before_any_row_changes(
    seeded: PostgresDatabase, obstacle: str
) -> None:
    statements, table, reason = OBSTACLES[obstacle]
    with psycopg.connect(seeded.app_dsn, autocommit=True) as app:
        for statement in statements:
            app.execute(statement)
    before = checksums(seeded.admin_dsn)
    fault = data_fault(
        "missing_credential", seeded.app_dsn, rows=1, kinds=["removed"], mapping=mapping_for(table)
    )
    with pytest.raises(NotApplied) as refused:
        await fault.prepare()
    assert isinstance(refused.value, NotInjected)
    assert "refused before any row changed" in str(refused.value) and reason in str(refused.value)
    assert seeded.password not in str(refused.value)
    assert checksums(seeded.admin_dsn) == before


async def test_a_role_without_the_right_to_insert_back_a_removed_row_is_refused_before_any_change(
    seeded: PostgresDatabase,
) -> None:
    with psycopg.connect(seeded.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("REVOKE INSERT ON credentials FROM {}").format(sql.Identifier(seeded.role)))
    before = checksums(seeded.admin_dsn)
    fault = data_fault("missing_credential", seeded.app_dsn, rows=1, kinds=["removed"])
    with pytest.raises(NotApplied) as refused:
        await fault.prepare()
    assert "lacks INSERT" in str(refused.value)
    assert checksums(seeded.admin_dsn) == before


TRIGGERS = {
    # refuses the INSERT that would put a removed credential back
    "refusing": (
        "$$ BEGIN RAISE EXCEPTION 'credentials are append-only for auditors'; END $$",
        ["the restore could not run", "append-only"],
    ),
    # lets it in, changed: the restored row would not be the original
    "rewriting": (
        "$$ BEGIN NEW.name := NEW.name || ' (re-entered)'; RETURN NEW; END $$",
        ["rewrites rows on write", "trial restore"],
    ),
}


@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
async def test_a_trigger_the_catalog_cannot_judge_is_caught_by_the_trial_restore_and_nothing_changes(
    seeded: PostgresDatabase, trigger: str
) -> None:
    body, reasons = TRIGGERS[trigger]
    with psycopg.connect(seeded.app_dsn, autocommit=True) as app:
        app.execute(f"CREATE FUNCTION on_insert() RETURNS trigger LANGUAGE plpgsql AS {body}")
        app.execute(
            "CREATE TRIGGER on_insert BEFORE INSERT ON credentials FOR EACH ROW EXECUTE FUNCTION on_insert()"
        )
    before = checksums(seeded.admin_dsn)
    fault = data_fault("missing_credential", seeded.app_dsn, rows=1, kinds=["removed"])
    await fault.prepare()  # a BEFORE trigger may be harmless: only running the restore tells
    with pytest.raises(NotApplied) as refused:
        await fault.inject()
    assert all(reason in str(refused.value) for reason in reasons), str(refused.value)
    assert checksums(seeded.admin_dsn) == before
    assert not await fault.verify()


async def test_an_auto_updatable_view_is_accepted_and_restored_exactly(seeded: PostgresDatabase) -> None:
    with psycopg.connect(seeded.app_dsn, autocommit=True) as app:
        app.execute("CREATE VIEW certs AS SELECT id, person_id, name, expires FROM credentials")
    before = checksums(seeded.admin_dsn)
    fault = data_fault(
        "missing_credential", seeded.app_dsn, rows=1, kinds=["removed"], mapping=mapping_for("certs")
    )
    await fault.prepare()
    await fault.inject()
    assert checksums(seeded.admin_dsn) != before and await fault.verify()
    await fault.revert()
    assert checksums(seeded.admin_dsn) == before and not await fault.verify()
