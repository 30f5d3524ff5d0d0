"""The `schedule` probe: coverage, utilization, ACGME, defense level of a schedule target."""

from __future__ import annotations

import time

import anyio
import anyio.to_thread

from chaos_mcp.config import ScheduleTarget
from chaos_mcp.probes.base import Measurement, Probe, ProbeError
from chaos_mcp.schedule.api import schedule_metrics
from chaos_mcp.schedule.errors import ScheduleError

UNITS = {
    "coverage_pct": "%",
    "max_utilization": "ratio",
    "mean_utilization": "ratio",
    "program_utilization": "ratio",
    "defense_level": "level",
}


def unit_of(metric: str) -> str:
    return UNITS.get(metric, "count")


class ScheduleProbe(Probe):
    timeout: float = 30.0

    def __init__(self, name: str, target: ScheduleTarget, target_name: str | None = None) -> None:
        self.name = name
        self.target = target
        self.target_name = target_name or name  # the overlays (faults) are keyed by target name

    async def sample(self) -> list[Measurement]:
        started = time.time()
        try:
            with anyio.fail_after(self.timeout):
                values = await anyio.to_thread.run_sync(
                    schedule_metrics, self.target_name, self.target, abandon_on_cancel=True
                )
        except ScheduleError as exc:
            raise ProbeError(f"schedule probe {self.name!r}: {exc}") from None
        ended = time.time()
        return [
            Measurement(
                probe=self.name, metric=k, value=float(v), unit=unit_of(k), started_at=started, ended_at=ended
            )
            for k, v in values.items()
        ]
