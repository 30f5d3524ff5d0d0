"""Criteria against measurements, for the engine: one verdict per criterion, never an exception.

The rules (matching, units, "every matching measurement must hold") are probes.tolerance's;
this adapter keeps the engine's criteria and the journal's verdict shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos_mcp.criteria import Criterion
from chaos_mcp.probes.base import Measurement
from chaos_mcp.probes.tolerance import ToleranceError, to_criterion
from chaos_mcp.probes.tolerance import evaluate as tolerance_evaluate


@dataclass(frozen=True)
class Verdict:
    criterion: Criterion
    actual: float | None
    unit: str
    passed: bool
    note: str = ""

    @property
    def measured(self) -> bool:
        return self.actual is not None

    @property
    def status(self) -> str:
        """PASS or FAIL on a measured value; INCONCLUSIVE when nothing measured the criterion."""
        if not self.measured:
            return "INCONCLUSIVE"
        return "PASS" if self.passed else "FAIL"

    def as_dict(self) -> dict[str, object]:
        unit = self.criterion.unit
        spaced = unit if unit in ("", "%") else f" {unit}"
        return {
            "criterion": self.criterion.text(),
            "metric": self.criterion.metric,
            "expected": f"{self.criterion.op} {self.criterion.threshold:g}{spaced}",
            "actual": None if self.actual is None else round(self.actual, 6),
            "unit": self.unit,
            "passed": self.passed,
            "measured": self.measured,
            "status": self.status,
            "note": self.note,
        }


def evaluate(criterion: Criterion, measurements: list[Measurement]) -> Verdict:
    try:
        verdict = tolerance_evaluate(to_criterion(criterion), measurements)
    except ToleranceError as exc:
        return Verdict(criterion, None, criterion.unit, False, str(exc))
    return Verdict(criterion, verdict.actual, verdict.unit, verdict.passed, verdict.note)


def evaluate_all(criteria: list[Criterion], measurements: list[Measurement]) -> list[Verdict]:
    return [evaluate(c, measurements) for c in criteria]
