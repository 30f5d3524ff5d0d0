"""Criteria: `{metric, op, threshold, unit}`, or the same written as `"recovery_time < 2 min"`.

Used for success criteria, abort (stop) conditions and steady-state definitions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from chaos_mcp.probes.tolerance import OPS, Op, selector_text

CRITERION_EXAMPLES = (
    '"recovery_time < 2 min", "error_rate > 50%", \'api.responses{status="503"} >= 1\', '
    '"recovery.api.error_rate > 50%", or '
    '{"metric": "latency_p95", "op": "<", "threshold": 200, "unit": "ms"}'
)
Phase = Literal["baseline", "during", "response", "recovery"]


class CriterionError(ValueError):
    """A criterion that cannot be read."""


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(
        min_length=1,
        description="metric name, optionally qualified by target and phase and with a label selector: "
        'latency_p95, api.error_rate, recovery.api.error_rate, api.responses{status="503"}, recovery_time; '
        "list_targets shows each target's metrics and labels",
    )
    op: Op = Field(description="comparison: <, <=, >, >=, ==, !=")
    threshold: float = Field(description="the number the metric is compared with, in `unit`")
    unit: str = Field("", description="unit of the threshold: ms, s, min, %, ratio, count, level, or empty")
    labels: dict[str, str] = Field(
        default_factory=dict, description='label selector, e.g. {"status": "503"}; only these series count'
    )
    phase: Phase | None = Field(
        None,
        description="when it applies: baseline, during (the window; the default), response, or recovery "
        "(after the revert: an abort condition then stops the experiment as aborted)",
    )

    measured_by: SkipJsonSchema[str | None] = Field(
        None,
        description="the target a bare metric resolved to when the design was checked (set by the server)",
    )

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit and self.unit != "%" else self.unit
        return f"{selector_text(self.phase, self.metric, self.labels)} {self.op} {self.threshold:.12g}{unit}"

    @property
    def target(self) -> str | None:
        """The target (probe) the metric is qualified by, or the one it resolved to; None if neither."""
        return self.metric.rpartition(".")[0] or self.measured_by

    @property
    def name(self) -> str:
        """The metric's own name, without target."""
        return self.metric.rpartition(".")[2]

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)


def in_phase(criteria: list[Criterion], phase: str, default: str = "during") -> list[Criterion]:
    """The criteria that act in `phase`; a criterion naming no phase acts in `default`."""
    return [c for c in criteria if (c.phase or default) == phase]


def parse_criterion(text: str) -> Criterion:
    """Read the text form; units are checked against the metric's dimension (probes.tolerance)."""
    return from_any(text)


def from_any(value: object) -> Criterion:
    """A criterion from text, a mapping or a Criterion, checked by the tolerance rules."""
    from chaos_mcp.probes.tolerance import ToleranceError, to_criterion

    raw = value.model_dump() if isinstance(value, Criterion) else value
    try:
        checked = to_criterion(raw)
    except ToleranceError as exc:
        raise CriterionError(f"{exc}; accepted forms: {CRITERION_EXAMPLES}") from None
    return Criterion(
        metric=checked.qualified,
        op=checked.op,
        threshold=checked.threshold,
        unit=checked.unit,
        labels=dict(checked.labels),
        phase=checked.phase,  # type: ignore[arg-type]  # checked against PHASES by the tolerance rules
    )
