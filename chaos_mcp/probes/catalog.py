"""The metric catalogue: what each probe measures (name, unit, labels), and what the engine derives.

Every probe declares its metrics (`Probe.metrics()`); a target measures the metrics of its
probes (`probes.registry.target_metrics`). Designs are checked against this catalogue, so a
criterion on a metric nothing measures is refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str
    labels: tuple[str, ...] = ()
    description: str = ""
    any_labels: bool = False  # Prometheus series carry whatever labels the query returns

    def accepts(self, labels: Iterable[str]) -> bool:
        return self.any_labels or set(labels) <= set(self.labels)

    def text(self) -> str:
        shown = "{…}" if self.any_labels else "{" + ",".join(self.labels) + "}" if self.labels else ""
        return f"{self.name}{shown} ({self.unit})"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "unit": self.unit,
            "labels": "any" if self.any_labels else list(self.labels),
            "description": self.description,
        }


def latency(prefix: str, quantiles: Iterable[int], labels: tuple[str, ...], what: str) -> list[MetricSpec]:
    return [MetricSpec(f"{prefix}_p{q}", "ms", labels, f"{what}, p{q}") for q in quantiles]


def errors(labels: tuple[str, ...] = ()) -> list[MetricSpec]:
    return [
        MetricSpec("requests", "count", labels, "attempts in the sample"),
        MetricSpec("errors", "count", labels, "failed attempts in the sample"),
        MetricSpec("error_rate", "ratio", labels, "errors / requests"),
    ]


PROBE_TIMEOUT = MetricSpec("probe_timeout", "count", (), "1 when a probe did not answer within its budget")
"""The measurer adds it for any probe that overran its time."""
PROBE_ERROR = MetricSpec("probe_error", "count", (), "1 when a probe could not run (the note says why)")
"""The measurer adds it for any probe that could not be built or failed while running."""


@dataclass(frozen=True)
class Derived:
    """A metric the engine computes for the experiment as a whole (not sampled by a probe)."""

    spec: MetricSpec
    where: str


DERIVED: dict[str, Derived] = {
    "recovery_time": Derived(
        MetricSpec("recovery_time", "s", (), "revert → steady state back (consecutive samples)"),
        "measured after the revert by rollback",
    ),
    "detection_time": Derived(
        MetricSpec("detection_time", "s", (), "injection → first hit of a detection signal"),
        "from the detection signals or the target's health during the window",
    ),
}
"""Judged only as success criteria: nothing can stop an experiment on a figure known at its end."""
