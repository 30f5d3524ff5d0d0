"""Native Redis faults against a private redis-server, checked from independent clients."""

from __future__ import annotations

import os
import signal
import time

import anyio
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from chaos_mcp.faults import FaultError
from chaos_mcp.faults.redis import ClientKill, ClientPause, MaxMemory
from tests.fixtures.services import RedisServer

from .helpers import eventually, soon

pytestmark = pytest.mark.anyio


def client(server: RedisServer) -> aioredis.Redis:
    return aioredis.Redis.from_url(server.url, socket_timeout=5)


async def answers_within(server: RedisServer, window: float, *command: object) -> bool:
    fresh = client(server)
    try:
        with anyio.move_on_after(window):
            await fresh.execute_command(*command)  # type: ignore[no-untyped-call]
            return True
        return False
    finally:
        await fresh.aclose()


async def settings(admin: aioredis.Redis) -> tuple[str, str]:
    current = await admin.config_get("maxmemory*")
    return str(current["maxmemory"]), str(current["maxmemory-policy"])


async def get_latency(server: RedisServer) -> float:
    """Seconds for one GET on an already connected, independent client."""
    fresh = client(server)
    try:
        await fresh.ping()
        started = time.perf_counter()
        await fresh.get("k")
        return time.perf_counter() - started
    finally:
        await fresh.aclose()


async def test_a_pause_all_stalls_gets_until_revert_and_then_they_answer_fast(own_redis: RedisServer) -> None:
    fault = ClientPause(url=own_redis.url, expires_at=soon(30))
    await fault.inject()
    try:
        for _ in range(5):  # across several slices: no gaps between them
            assert not await answers_within(own_redis, 0.1, "GET", "k")
        assert await fault.verify()
    finally:
        started = time.monotonic()
        await fault.revert()
    assert time.monotonic() - started < 1.5
    assert await get_latency(own_redis) < 0.005
    assert not await fault.verify()


async def test_a_pause_all_ends_within_a_slice_when_its_helper_dies(own_redis: RedisServer) -> None:
    fault = ClientPause(url=own_redis.url, expires_at=soon(30))
    await fault.inject()
    assert fault.pid is not None
    os.kill(fault.pid, signal.SIGKILL)

    async def answering() -> bool:
        return await answers_within(own_redis, 0.1, "PING")

    assert await eventually(answering, within=3) < 1.0
    await fault.revert()


async def test_a_write_pause_stalls_writes_not_reads_and_revert_lifts_it_at_once(
    own_redis: RedisServer,
) -> None:
    fault = ClientPause(url=own_redis.url, expires_at=soon(30), mode="write")
    await fault.inject()
    assert await answers_within(own_redis, 0.1, "GET", "k")
    assert not await answers_within(own_redis, 0.1, "SET", "k", "v")
    assert await fault.verify()
    started = time.monotonic()
    await fault.revert()
    await fault.revert()
    assert time.monotonic() - started < 1
    assert await answers_within(own_redis, 0.1, "SET", "k", "v")


async def test_a_pause_ends_at_its_deadline_without_a_revert(own_redis: RedisServer) -> None:
    fault = ClientPause(url=own_redis.url, expires_at=soon(1.0))
    await fault.inject()
    assert not await answers_within(own_redis, 0.1, "PING")

    async def answering() -> bool:
        return await answers_within(own_redis, 0.1, "PING")

    await eventually(answering, within=3)
    assert time.time() >= fault.expires_at - 0.05


async def test_client_kill_by_type_ends_subscribers_and_spares_other_clients(own_redis: RedisServer) -> None:
    subscriber, bystander = client(own_redis), client(own_redis)
    pubsub = subscriber.pubsub()
    try:
        await pubsub.subscribe("news")
        await pubsub.get_message(timeout=1)
        await bystander.ping()
        fault = ClientKill(url=own_redis.url, client_type="pubsub")
        await fault.inject()
        assert fault.killed == 1
        assert await fault.verify()
        with pytest.raises(RedisConnectionError):
            await pubsub.parse_response(block=True, timeout=2)
        bystander.connection_pool.connection_kwargs["retry_on_error"] = []
        assert await bystander.ping()
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await subscriber.aclose()
        await bystander.aclose()


async def test_client_kill_by_address_ends_only_that_client(own_redis: RedisServer) -> None:
    victim = await aioredis.Redis.from_url(
        own_redis.url, single_connection_client=True, retry=None
    ).initialize()
    try:
        info = await victim.client_info()
        fault = ClientKill(url=own_redis.url, addr=str(info["addr"]))
        assert not await fault.verify()
        await fault.inject()
        assert fault.killed == 1
        assert await fault.verify()
        with pytest.raises(RedisConnectionError):
            await victim.ping()
    finally:
        await victim.aclose()


async def test_maxmemory_makes_writes_fail_without_evicting_and_revert_restores_exactly(
    own_redis: RedisServer,
) -> None:
    admin = client(own_redis)
    try:
        await admin.config_set("maxmemory", "104857600")
        await admin.config_set("maxmemory-policy", "allkeys-lru")
        await admin.mset({f"key{i}": "x" * 100 for i in range(200)})
        fault = MaxMemory(url=own_redis.url)
        await fault.prepare()
        await fault.inject()
        assert await fault.verify()
        with pytest.raises(ResponseError, match=r"used memory > .maxmemory."):
            await admin.set("new", "value")
        assert await admin.dbsize() == 200
        await fault.revert()
        await fault.revert()
        assert await settings(admin) == ("104857600", "allkeys-lru")
        assert await admin.set("new", "value")
        assert not await fault.verify()
    finally:
        await admin.aclose()


async def test_maxmemory_refuses_evicting_policies_unless_data_loss_is_allowed(
    own_redis: RedisServer,
) -> None:
    with pytest.raises(FaultError, match="allow_eviction"):
        MaxMemory(url=own_redis.url, policy="allkeys-lru")
    assert MaxMemory(url=own_redis.url, policy="allkeys-lru", allow_eviction=True).policy == "allkeys-lru"


def test_descriptions_carry_no_password() -> None:
    url = "redis://:s3cretpass@127.0.0.1:6390/0"
    faults = [
        ClientPause(url=url, expires_at=soon(1)),
        ClientKill(url=url, client_type="normal"),
        MaxMemory(url=url, limit_bytes=1000),
    ]
    for fault in faults:
        assert "s3cretpass" not in fault.describe()
        assert "127.0.0.1:6390" in fault.describe()


async def test_an_unreachable_redis_gives_an_error_without_the_password() -> None:
    fault = MaxMemory(url="redis://:s3cretpass@127.0.0.1:1/0")
    with pytest.raises(FaultError) as caught:
        await fault.prepare()
    assert "s3cretpass" not in str(caught.value)
    await fault.revert()  # nothing was recorded, so nothing to undo


async def test_maxmemory_with_a_deadline_is_restored_by_its_warden_without_a_revert(
    own_redis: RedisServer,
) -> None:
    admin = client(own_redis)
    try:
        before = await settings(admin)
        fault = MaxMemory(url=own_redis.url, expires_at=soon(1.0))
        await fault.prepare()
        await fault.inject()
        assert await settings(admin) != before

        async def restored() -> bool:
            return await settings(admin) == before

        await eventually(restored, within=5)
        assert fault.expires_at is not None and time.time() >= fault.expires_at - 0.05
    finally:
        await admin.aclose()
