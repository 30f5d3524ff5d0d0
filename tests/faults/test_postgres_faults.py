"""Native PostgreSQL faults on a private database and role, checked from independent connections."""

from __future__ import annotations

import time

import psycopg
import pytest

from chaos_mcp.faults import FaultError
from chaos_mcp.faults import _detached as detached
from chaos_mcp.faults.postgres import BlockConnections, LockTable, TerminateBackends
from tests.fixtures.services import PostgresDatabase

from .helpers import eventually, soon

pytestmark = pytest.mark.anyio


async def connect(dsn: str, application_name: str = "test") -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, connect_timeout=3, application_name=application_name
    )


async def can_connect(dsn: str) -> bool:
    try:
        conn = await connect(dsn)
    except psycopg.OperationalError:
        return False
    await conn.close()
    return True


async def is_alive(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> bool:
    try:
        await conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


async def settings(db: PostgresDatabase) -> tuple[bool, int]:
    async with await connect(db.admin_dsn.replace(db.database, "postgres")) as conn:
        cursor = await conn.execute(
            "SELECT datallowconn, datconnlimit FROM pg_database WHERE datname = %s", (db.database,)
        )
        row = await cursor.fetchone()
    assert row is not None
    return bool(row[0]), int(row[1])  # type: ignore[call-overload]


async def test_block_connections_refuses_new_sessions_ends_old_ones_and_restores_the_setting(
    own_postgres: PostgresDatabase,
) -> None:
    before = await settings(own_postgres)
    old = await connect(own_postgres.app_dsn)
    fault = BlockConnections(dsn=own_postgres.admin_dsn, database=own_postgres.database)
    await fault.prepare()
    await fault.inject()
    try:
        assert await fault.verify()
        assert not await is_alive(old)
        assert not await can_connect(own_postgres.app_dsn)
        assert not await can_connect(own_postgres.admin_dsn)
    finally:
        await old.close()
        await fault.revert()
    await fault.revert()
    assert await can_connect(own_postgres.app_dsn)
    assert await settings(own_postgres) == before
    assert not await fault.verify()


async def test_limit_zero_refuses_the_application_role_and_restores_the_exact_limit(
    own_postgres: PostgresDatabase,
) -> None:
    async with await connect(own_postgres.admin_dsn) as conn:
        await conn.execute(f'ALTER DATABASE "{own_postgres.database}" CONNECTION LIMIT 7')
    fault = BlockConnections(dsn=own_postgres.admin_dsn, database=own_postgres.database, mode="limit_zero")
    await fault.prepare()
    await fault.inject()
    assert await fault.verify()
    assert not await can_connect(own_postgres.app_dsn)
    await fault.revert()
    assert await settings(own_postgres) == (True, 7)
    assert await can_connect(own_postgres.app_dsn)


async def test_block_connections_refuses_template_and_admin_databases(own_postgres: PostgresDatabase) -> None:
    for database in ("template1", "postgres"):
        fault = BlockConnections(dsn=own_postgres.admin_dsn, database=database)
        with pytest.raises(FaultError, match="refusing"):
            await fault.prepare()


async def test_a_missing_database_is_named_with_the_ones_that_exist(own_postgres: PostgresDatabase) -> None:
    fault = BlockConnections(dsn=own_postgres.admin_dsn, database="no_such_db")
    with pytest.raises(FaultError, match=f"does not exist.*{own_postgres.database}"):
        await fault.prepare()


async def test_terminate_backends_ends_only_the_named_application(own_postgres: PostgresDatabase) -> None:
    victim = await connect(own_postgres.app_dsn, application_name="victim")
    bystander = await connect(own_postgres.app_dsn, application_name="bystander")
    try:
        fault = TerminateBackends(
            dsn=own_postgres.admin_dsn, database=own_postgres.database, application_name="victim"
        )
        await fault.prepare()
        assert not await fault.verify()
        await fault.inject()
        assert fault.terminated == 1
        assert await fault.verify()
        assert not await is_alive(victim)
        assert await is_alive(bystander)
        await fault.revert()
        assert await can_connect(own_postgres.app_dsn)
    finally:
        await victim.close()
        await bystander.close()


async def test_terminate_backends_by_role_spares_other_roles(own_postgres: PostgresDatabase) -> None:
    app = await connect(own_postgres.app_dsn)
    admin = await connect(own_postgres.admin_dsn)
    try:
        fault = TerminateBackends(
            dsn=own_postgres.admin_dsn, database=own_postgres.database, role=own_postgres.role
        )
        await fault.inject()
        assert not await is_alive(app)
        assert await is_alive(admin)
    finally:
        await app.close()
        await admin.close()


async def make_table(db: PostgresDatabase) -> None:
    async with await connect(db.app_dsn) as conn:
        await conn.execute('CREATE TABLE "Shift Table" (id int)')
        await conn.execute('INSERT INTO "Shift Table" VALUES (1)')


async def query_answers(db: PostgresDatabase, within_ms: int = 100) -> bool:
    async with await connect(db.app_dsn) as conn:
        await conn.execute(f"SET lock_timeout = {within_ms}")
        try:
            await conn.execute('SELECT count(*) FROM "Shift Table"')
        except psycopg.errors.LockNotAvailable:
            return False
        return True


async def test_lock_table_stalls_queries_on_that_table_until_revert(own_postgres: PostgresDatabase) -> None:
    await make_table(own_postgres)
    fault = LockTable(
        dsn=own_postgres.admin_dsn, database=own_postgres.database, table="Shift Table", expires_at=soon(30)
    )
    await fault.prepare()
    await fault.inject()
    try:
        assert await fault.verify()
        assert not await query_answers(own_postgres)
    finally:
        await fault.revert()
    await fault.revert()
    assert await query_answers(own_postgres)
    assert not await fault.verify()


async def test_a_lock_ends_at_its_deadline_without_a_revert(own_postgres: PostgresDatabase) -> None:
    await make_table(own_postgres)
    fault = LockTable(
        dsn=own_postgres.admin_dsn, database=own_postgres.database, table="Shift Table", expires_at=soon(1.0)
    )
    await fault.prepare()
    await fault.inject()
    assert not await query_answers(own_postgres)

    async def released() -> bool:
        return await query_answers(own_postgres, within_ms=50)

    await eventually(released, within=4)
    assert time.time() >= fault.expires_at - 0.1
    assert not await fault.verify()


async def test_lock_table_names_a_missing_table(own_postgres: PostgresDatabase) -> None:
    fault = LockTable(
        dsn=own_postgres.admin_dsn, database=own_postgres.database, table="nope", expires_at=soon(5)
    )
    with pytest.raises(FaultError, match=r"public\.nope does not exist"):
        await fault.prepare()


def test_descriptions_and_errors_carry_no_password(own_postgres: PostgresDatabase) -> None:
    faults = [
        TerminateBackends(dsn=own_postgres.app_dsn, database="other"),
        BlockConnections(dsn=own_postgres.app_dsn, database="other"),
        LockTable(dsn=own_postgres.app_dsn, database="other", table="t", expires_at=soon(5)),
    ]
    for fault in faults:
        assert own_postgres.password not in fault.describe()


async def test_an_unreachable_server_gives_an_error_without_the_password() -> None:
    fault = BlockConnections(dsn="postgresql://app:s3cretpass@127.0.0.1:1/app", database="app")
    with pytest.raises(FaultError) as caught:
        await fault.prepare()
    assert "s3cretpass" not in str(caught.value)
    await fault.revert()


async def test_a_block_with_a_deadline_is_lifted_by_its_warden_without_a_revert(
    own_postgres: PostgresDatabase,
) -> None:
    before = await settings(own_postgres)
    db = own_postgres.database
    fault = BlockConnections(dsn=own_postgres.admin_dsn, database=db, expires_at=soon(1.0))
    await fault.prepare()
    await fault.inject()
    assert not await can_connect(own_postgres.app_dsn)

    async def restored() -> bool:
        return await settings(own_postgres) == before

    await eventually(restored, within=5)
    assert fault.expires_at is not None and time.time() >= fault.expires_at - 0.05
    assert await can_connect(own_postgres.app_dsn)
    await detached.wait_gone(fault.warden_tag)  # the warden exits once it has restored


async def test_revert_before_the_deadline_also_stops_the_warden(own_postgres: PostgresDatabase) -> None:
    db = own_postgres.database
    fault = BlockConnections(dsn=own_postgres.admin_dsn, database=db, expires_at=soon(30))
    await fault.prepare()
    await fault.inject()
    assert detached.tagged_workers(fault.warden_tag)
    await fault.revert()
    assert not detached.tagged_workers(fault.warden_tag)
