"""Criteria: `{metric, op, threshold, unit}`, or the same written as `"recovery_time < 2 min"`.

Used for success criteria, abort (stop) conditions and steady-state definitions.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chaos_mcp.probes.tolerance import OPS, Op

CRITERION_EXAMPLES = (
    '"recovery_time < 2 min", "error_rate > 50%", or '
    '{"metric": "latency_p95", "op": "<", "threshold": 200, "unit": "ms"}'
)


class CriterionError(ValueError):
    """A criterion that cannot be read."""


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(
        min_length=1,
        description="metric name, optionally qualified by probe: latency_p95, error_rate, coverage_pct, "
        "recovery_time",
    )
    op: Op = Field(description="comparison: <, <=, >, >=, ==, !=")
    threshold: float = Field(description="the number the metric is compared with, in `unit`")
    unit: str = Field("", description="unit of the threshold: ms, s, min, %, ratio, count, level, or empty")

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit and self.unit != "%" else self.unit
        return f"{self.metric} {self.op} {self.threshold:g}{unit}"

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)


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
    return Criterion(metric=checked.qualified, op=checked.op, threshold=checked.threshold, unit=checked.unit)
