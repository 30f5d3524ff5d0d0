"""Whatever order inject / revert / prepare / fresh-process-style revert come in, the end state
equals the original settings exactly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import psycopg
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from chaos_mcp.faults import Fault, fault_from_record
from chaos_mcp.faults.postgres import BlockConnections
from chaos_mcp.faults.redis import EVICTING_POLICIES, MaxMemory
from tests.fixtures.services import PostgresDatabase, RedisServer

OPS = st.lists(st.sampled_from(["inject", "revert", "prepare", "revert_from_record"]), max_size=6)
PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def run_sequence(fault: Fault, ops: list[str]) -> None:
    await fault.prepare()
    record = fault.to_record()
    steps: dict[str, Callable[[], Awaitable[None]]] = {
        "inject": fault.inject,
        "revert": fault.revert,
        "prepare": fault.prepare,
        "revert_from_record": fault_from_record(record).revert,
    }
    for op in ops:
        await steps[op]()
    await fault.revert()


@PROPERTY
@given(
    maxmemory=st.sampled_from(["0", "10485760", "104857600", "3000000000"]),
    policy=st.sampled_from(["noeviction", *EVICTING_POLICIES]),
    ops=OPS,
)
def test_redis_maxmemory_always_ends_at_the_original_settings(
    own_redis: RedisServer, maxmemory: str, policy: str, ops: list[str]
) -> None:
    async def scenario() -> tuple[str, str]:
        admin = aioredis.Redis.from_url(own_redis.url)
        try:
            await admin.config_set("maxmemory", maxmemory)
            await admin.config_set("maxmemory-policy", policy)
            await run_sequence(MaxMemory(url=own_redis.url), ops)
            current = await admin.config_get("maxmemory*")
            return str(current["maxmemory"]), str(current["maxmemory-policy"])
        finally:
            await admin.aclose()

    assert anyio.run(scenario) == (maxmemory, policy)


@PROPERTY
@given(
    allow=st.booleans(),
    limit=st.integers(min_value=-1, max_value=500),
    mode=st.sampled_from(["disallow", "limit_zero"]),
    ops=OPS,
)
def test_postgres_block_always_ends_at_the_original_settings(
    own_postgres: PostgresDatabase, allow: bool, limit: int, mode: str, ops: list[str]
) -> None:
    db = own_postgres.database
    admin_dsn = psycopg.conninfo.make_conninfo(own_postgres.admin_dsn, dbname="postgres")

    async def scenario() -> tuple[bool, int]:
        async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as admin:
            await admin.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {} CONNECTION LIMIT {}").format(
                    sql.Identifier(db), sql.SQL(str(allow).lower()), sql.Literal(limit)
                )
            )
            await run_sequence(BlockConnections(dsn=own_postgres.admin_dsn, database=db, mode=mode), ops)
            cursor = await admin.execute(
                "SELECT datallowconn, datconnlimit FROM pg_database WHERE datname = %s", (db,)
            )
            row = await cursor.fetchone()
            assert row is not None
            return bool(row[0]), int(row[1])

    assert anyio.run(scenario) == (allow, limit)
