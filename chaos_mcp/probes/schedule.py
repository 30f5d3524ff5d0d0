"""The `schedule` probe: coverage, utilization, ACGME, defense level of a schedule target."""

from __future__ import annotations

import time

import anyio
import anyio.to_thread

from chaos_mcp.config import ScheduleTarget
from chaos_mcp.probes import catalog
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


METRICS = {
    "coverage_pct": "required slots covered",
    "uncovered_slots": "required slots nobody covers",
    "required_slots": "required slots in the program",
    "max_utilization": "busiest faculty member's utilization",
    "mean_utilization": "mean faculty utilization",
    "program_utilization": "program-wide utilization (rho)",
    "acgme_violations": "ACGME rule violations",
    "validation_errors": "schedule validation errors",
    "defense_level": "defense level (0 normal … 4 crisis)",
    "n1_critical": "faculty whose loss leaves a gap (N-1)",
    "faculty_active": "faculty available",
}
"""What `schedule_metrics` returns (chaos_mcp.schedule.analysis.metrics), sampled at its natural rate."""


def unit_of(metric: str) -> str:
    return UNITS.get(metric, "count")


class ScheduleProbe(Probe):
    timeout: float = 30.0

    def __init__(self, name: str, target: ScheduleTarget, target_name: str | None = None) -> None:
        self.name = name
        self.target = target
        self.target_name = target_name or name  # the overlays (faults) are keyed by target name

    def metrics(self) -> list[catalog.MetricSpec]:
        found = [catalog.MetricSpec(name, unit_of(name), (), what) for name, what in METRICS.items()]
        return found

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
