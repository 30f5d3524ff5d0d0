"""Criteria against measurements: one verdict per criterion, with the evidence."""

from __future__ import annotations

from dataclasses import dataclass

from chaos_mcp.criteria import Criterion
from chaos_mcp.probes.base import Measurement

# Units each canonical measurement unit accepts in a threshold, with the factor that turns
# a threshold written in that unit into the measurement's unit.
_CONVERSIONS: dict[str, dict[str, float]] = {
    "ms": {"ms": 1.0, "": 1.0, "s": 1000.0, "sec": 1000.0, "min": 60_000.0, "µs": 0.001, "us": 0.001},
    "s": {"s": 1.0, "": 1.0, "sec": 1.0, "ms": 0.001, "min": 60.0, "m": 60.0, "h": 3600.0},
    "ratio": {"ratio": 1.0, "": 1.0, "%": 0.01},
    "%": {"%": 1.0, "": 1.0, "ratio": 100.0},
}


class UnitMismatch(ValueError):
    """A threshold's unit cannot be compared with the measurement's."""


@dataclass(frozen=True)
class Verdict:
    criterion: Criterion
    actual: float | None
    unit: str
    passed: bool
    note: str = ""
    probe: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "criterion": self.criterion.text(),
            "metric": self.criterion.metric,
            "expected": f"{self.criterion.op} {self.criterion.threshold:g}{_spaced(self.criterion.unit)}",
            "actual": None if self.actual is None else round(self.actual, 6),
            "unit": self.unit,
            "passed": self.passed,
            "note": self.note,
            "probe": self.probe,
        }


def _spaced(unit: str) -> str:
    return unit if unit in ("", "%") else f" {unit}"


def threshold_in(criterion: Criterion, unit: str) -> float:
    table = _CONVERSIONS.get(unit)
    if table is None:
        if criterion.unit in ("", unit) or unit in ("", "count", "level"):
            return criterion.threshold
        raise UnitMismatch(
            f"{criterion.metric} is measured in {unit}; threshold unit {criterion.unit!r} "
            f"cannot be converted (use {unit})"
        )
    if criterion.unit not in table:
        raise UnitMismatch(
            f"{criterion.metric} is measured in {unit}; accepted threshold units: "
            f"{', '.join(u or '(none)' for u in table)}"
        )
    return criterion.threshold * table[criterion.unit]


def find(criterion: Criterion, measurements: list[Measurement]) -> Measurement | None:
    probe, _, metric = criterion.metric.rpartition(".")
    for m in measurements:
        if m.metric == metric and (not probe or m.probe == probe) and not m.labels:
            return m
    for m in measurements:
        if m.metric == metric and (not probe or m.probe == probe):
            return m
    return None


def evaluate(criterion: Criterion, measurements: list[Measurement]) -> Verdict:
    found = find(criterion, measurements)
    if found is None:
        seen = sorted({f"{m.probe}.{m.metric}" for m in measurements})
        return Verdict(
            criterion,
            None,
            criterion.unit,
            False,
            f"no measurement of {criterion.metric}; measured: {', '.join(seen) or 'nothing'}",
        )
    try:
        threshold = threshold_in(criterion, found.unit)
    except UnitMismatch as exc:
        return Verdict(criterion, found.value, found.unit, False, str(exc), found.probe)
    passed = Criterion(metric=criterion.metric, op=criterion.op, threshold=threshold, unit=found.unit).holds(
        found.value
    )
    return Verdict(criterion, found.value, found.unit, passed, found.note, found.probe)


def evaluate_all(criteria: list[Criterion], measurements: list[Measurement]) -> list[Verdict]:
    return [evaluate(c, measurements) for c in criteria]
