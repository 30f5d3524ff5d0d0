"""The one shape every probe shares.

A probe is an object with a name and `async sample() -> list[Measurement]`. It measures a
real system from the outside and never raises for the system being down: an unreachable
target is itself a measurement (errors, error_rate = 1.0). It raises `ProbeError` only
when it is misconfigured. Every probe bounds its own time (`timeout`), so a hanging
target can never stall the supervisor past its interval.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from chaos_mcp.probes.catalog import MetricSpec


class ProbeError(Exception):
    """A probe is misconfigured (bad URL, bad query); the message says what to fix."""


@dataclass(frozen=True)
class Measurement:
    probe: str
    metric: str
    value: float
    unit: str
    samples: int = 1
    started_at: float = field(default_factory=time.time)
    ended_at: float = field(default_factory=time.time)
    labels: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "probe": self.probe,
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "samples": self.samples,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "labels": dict(self.labels),
            "note": self.note,
        }


class Probe(ABC):
    name: str
    timeout: float = 5.0

    @abstractmethod
    async def sample(self) -> list[Measurement]: ...

    def metrics(self) -> list[MetricSpec]:
        """What `sample()` measures; the design check refuses criteria on anything else."""
        return []
