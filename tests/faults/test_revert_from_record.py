"""Every fault family reverts in a fresh interpreter from its write-ahead journal record alone.

The record is taken after prepare() and *before* inject(), exactly what the journal holds when
a crash happens mid-inject: no pid, no runtime state.
"""

from __future__ import annotations

import psycopg
import pytest
import redis.asyncio as aioredis

from chaos_mcp.faults import Fault
from chaos_mcp.faults import _detached as detached
from chaos_mcp.faults.postgres import BlockConnections, LockTable
from chaos_mcp.faults.process import MemoryBallast
from chaos_mcp.faults.redis import ClientPause, MaxMemory
from tests.fixtures.services import PostgresDatabase, RedisServer

from .helpers import revert_in_fresh_process, soon

pytestmark = pytest.mark.anyio


async def inject_then_revert_elsewhere(fault: Fault) -> None:
    await fault.prepare()
    record = fault.to_record()
    await fault.inject()
    assert await fault.verify()
    revert_in_fresh_process(record)
    assert not await fault.verify()


async def test_redis_faults_revert_from_the_record(own_redis: RedisServer) -> None:
    await inject_then_revert_elsewhere(MaxMemory(url=own_redis.url))
    await inject_then_revert_elsewhere(ClientPause(url=own_redis.url, expires_at=soon(30), mode="WRITE"))
    await inject_then_revert_elsewhere(ClientPause(url=own_redis.url, expires_at=soon(30), mode="ALL"))
    client = aioredis.Redis.from_url(own_redis.url)
    try:
        assert (await client.config_get("maxmemory"))["maxmemory"] == "0"
        assert await client.set("k", "v")
    finally:
        await client.aclose()


async def test_postgres_faults_revert_from_the_record(own_postgres: PostgresDatabase) -> None:
    async with await psycopg.AsyncConnection.connect(own_postgres.app_dsn, autocommit=True) as conn:
        await conn.execute("CREATE TABLE shifts (id int)")
    db = own_postgres.database
    await inject_then_revert_elsewhere(BlockConnections(dsn=own_postgres.admin_dsn, database=db))
    lock = LockTable(dsn=own_postgres.admin_dsn, database=db, table="shifts", expires_at=soon(30))
    await inject_then_revert_elsewhere(lock)
    assert not detached.tagged_workers(lock.tag)
    async with await psycopg.AsyncConnection.connect(own_postgres.app_dsn, autocommit=True) as conn:
        await conn.execute("SET lock_timeout = 100")
        await conn.execute("SELECT * FROM shifts")


async def test_the_ballast_reverts_from_the_record() -> None:
    fault = MemoryBallast(size_mb=32, expires_at=soon(30))
    await inject_then_revert_elsewhere(fault)
    assert fault.pid is not None and detached.rss_kib(fault.pid) == 0
