"""Process faults: memory pressure from a bounded, detached ballast process.

`process.memory_ballast` starts `chaos_mcp.faults._ballast`, which allocates and touches
`size_mb` MiB and exits by itself at `expires_at`, so the pressure ends on time even if the MCP
server dies. Revert kills it (found by its tag, or by pid + start time, never a recycled pid).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from chaos_mcp.faults import _detached
from chaos_mcp.faults.base import Fault, FaultError, register_fault

RESERVE_MB = 256


def _tag(family: str) -> str:
    return f"chaos-mcp-{family}-{uuid.uuid4().hex[:12]}"


def mem_available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    raise FaultError("cannot read MemAvailable from /proc/meminfo; memory ballast needs Linux /proc")


def clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%SZ")


@register_fault
@dataclasses.dataclass
class MemoryBallast(Fault):
    """Hold `size_mb` MiB resident in a separate process until `expires_at` (epoch seconds)."""

    kind = "process.memory_ballast"
    reach = "host"

    size_mb: int
    expires_at: float
    max_mb: int = 1024
    tag: str = dataclasses.field(default_factory=lambda: _tag("ballast"))
    pid: int | None = None
    start_ticks: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.size_mb <= self.max_mb:
            raise FaultError(
                f"size_mb must be between 1 and the target's max_memory_mb ({self.max_mb}); "
                f"got {self.size_mb}. Ask for less, or raise max_memory_mb in chaos.toml."
            )

    async def prepare(self) -> None:
        available = mem_available_mb()
        if self.size_mb > available - RESERVE_MB:
            raise FaultError(
                f"size_mb {self.size_mb} would leave less than {RESERVE_MB} MiB of the "
                f"{available} MiB available on this machine; ask for at most {available - RESERVE_MB}"
            )

    async def inject(self) -> None:
        if self.expires_at <= time.time():
            raise FaultError(f"expires_at {clock(self.expires_at)} is already past; nothing was started")
        payload = {"size_mb": self.size_mb, "expires_at": self.expires_at}
        worker = await _detached.spawn(
            "chaos_mcp.faults._ballast", self.tag, payload, ready_timeout=10 + self.size_mb / 100
        )
        self.pid, self.start_ticks = worker.pid, worker.start_ticks

    async def revert(self) -> None:
        _detached.stop_workers(self.tag, _detached.known(self.pid, self.start_ticks))
        await _detached.wait_gone(self.tag)

    async def verify(self) -> bool:
        workers = _detached.tagged_workers(self.tag)
        return any(_detached.rss_kib(w.pid) >= self.size_mb * 1024 for w in workers)

    def describe(self) -> str:
        return f"memory ballast of {self.size_mb} MiB in a helper process until {clock(self.expires_at)}"
