"""The memory ballast: a detached, bounded process that ends by itself or on revert."""

from __future__ import annotations

import time

import pytest

from chaos_mcp.faults import FaultError, fault_from_record
from chaos_mcp.faults import _detached as detached
from chaos_mcp.faults.process import MemoryBallast

from .helpers import eventually, soon

pytestmark = pytest.mark.anyio


async def test_the_ballast_reaches_the_asked_size_and_is_gone_after_revert() -> None:
    fault = MemoryBallast(size_mb=64, expires_at=soon(30))
    await fault.prepare()
    await fault.inject()
    assert fault.pid is not None
    try:
        assert detached.rss_kib(fault.pid) >= 64 * 1024
        assert await fault.verify()
    finally:
        await fault.revert()
    await fault.revert()
    assert detached.rss_kib(fault.pid) == 0
    assert not detached.tagged_workers(fault.tag)
    assert not await fault.verify()


async def test_the_ballast_exits_by_itself_at_its_deadline() -> None:
    fault = MemoryBallast(size_mb=16, expires_at=soon(1.0))
    await fault.inject()
    assert await fault.verify()

    async def gone() -> bool:
        return not detached.tagged_workers(fault.tag)

    await eventually(gone, within=4)
    assert time.time() >= fault.expires_at - 0.05


async def test_a_recycled_pid_is_never_killed() -> None:
    record = MemoryBallast(size_mb=8, expires_at=soon(30)).to_record()
    record["fields"] |= {"pid": 1, "start_ticks": -1}
    await fault_from_record(record).revert()  # pid 1 does not match its start time: left alone


def test_the_ballast_is_bounded_by_the_targets_ceiling() -> None:
    with pytest.raises(FaultError, match="max_memory_mb"):
        MemoryBallast(size_mb=2048, expires_at=soon(5), max_mb=1024)
    with pytest.raises(FaultError, match="between 1"):
        MemoryBallast(size_mb=0, expires_at=soon(5))


async def test_the_ballast_refuses_more_than_the_machine_can_spare() -> None:
    fault = MemoryBallast(size_mb=65536, expires_at=soon(5), max_mb=65536)
    with pytest.raises(FaultError, match="available on this machine"):
        await fault.prepare()


async def test_a_deadline_in_the_past_starts_nothing() -> None:
    fault = MemoryBallast(size_mb=8, expires_at=soon(-1))
    with pytest.raises(FaultError, match="already past"):
        await fault.inject()
    assert not detached.tagged_workers(fault.tag)
