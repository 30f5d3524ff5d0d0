"""Tolerances: does a measured metric meet a criterion such as "latency_p95 < 200 ms"?

A criterion is `{metric, op, threshold, unit}`; `metric` may be qualified by the probe that
measures it (`api.latency_p95`), and `op` is one of < <= > >= == !=. Units come in three
dimensions, each with one canonical unit that probes report in:

    duration   ms (canonical), us, s, min, h
    fraction   ratio (canonical, 0..1), %          "error_rate < 0.1%" is 0.001 as a ratio
    number     count (canonical), bool

A threshold is converted into the unit of the measurement it is compared with; an empty unit
means "the metric's own unit". A unit from another dimension (a latency in %) is a
`ToleranceError` naming the metric's unit and the accepted ones — at parse time for metrics
whose dimension is known by name, at evaluation for the rest.

The spec's own words work as metric names too: `response_time` reads `latency_p95` and
`coverage` reads `coverage_pct` when nothing carries those names themselves.

`evaluate()` never raises for missing data: a criterion nobody measured gets a failing
`Verdict` whose note lists what the probes did measure.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import singledispatch
from typing import Literal, Protocol, cast, get_args

from chaos_mcp.config import PHASES
from chaos_mcp.probes.base import Measurement

Op = Literal["<", "<=", ">", ">=", "==", "!="]
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_OP_ALIASES = {"=": "==", "≤": "<=", "≥": ">=", "≠": "!="}
EXAMPLES = (
    '"latency_p95 < 200ms", "error_rate < 0.1%", "recovery_time < 2 min", "api.coverage >= 100%", '
    '\'api.responses{status="503"} >= 1\', "recovery.api.error_rate > 50%"'
)


class ToleranceError(ValueError):
    """A criterion that cannot be read or cannot be compared; the message says what is accepted."""


class Dimension(Enum):
    DURATION = "duration"
    FRACTION = "fraction"
    NUMBER = "number"


CANONICAL_UNIT = {Dimension.DURATION: "ms", Dimension.FRACTION: "ratio", Dimension.NUMBER: "count"}
# unit → (dimension, size of one unit in the canonical unit)
UNITS: dict[str, tuple[Dimension, float]] = {
    "us": (Dimension.DURATION, 0.001),
    "µs": (Dimension.DURATION, 0.001),
    "ms": (Dimension.DURATION, 1.0),
    "s": (Dimension.DURATION, 1000.0),
    "sec": (Dimension.DURATION, 1000.0),
    "secs": (Dimension.DURATION, 1000.0),
    "second": (Dimension.DURATION, 1000.0),
    "seconds": (Dimension.DURATION, 1000.0),
    "m": (Dimension.DURATION, 60_000.0),
    "min": (Dimension.DURATION, 60_000.0),
    "mins": (Dimension.DURATION, 60_000.0),
    "minute": (Dimension.DURATION, 60_000.0),
    "minutes": (Dimension.DURATION, 60_000.0),
    "h": (Dimension.DURATION, 3_600_000.0),
    "hour": (Dimension.DURATION, 3_600_000.0),
    "hours": (Dimension.DURATION, 3_600_000.0),
    "ratio": (Dimension.FRACTION, 1.0),
    "%": (Dimension.FRACTION, 0.01),
    "pct": (Dimension.FRACTION, 0.01),
    "percent": (Dimension.FRACTION, 0.01),
    "count": (Dimension.NUMBER, 1.0),
    "bool": (Dimension.NUMBER, 1.0),
}
# Metrics whose dimension is known from the name alone, checked when a criterion is parsed.
_METRIC_DIMENSIONS: tuple[tuple[re.Pattern[str], Dimension], ...] = (
    (re.compile(r"latency|_time(_|$)|^time_|_ms$|duration"), Dimension.DURATION),
    (re.compile(r"error_rate|coverage|utili[sz]ation|_pct$|_ratio$"), Dimension.FRACTION),
    (re.compile(r"^(errors|requests|connections_in_use|healthy)$"), Dimension.NUMBER),
)
# The spec's words for metrics, used when no measurement carries the name itself.
METRIC_ALIASES = {"response_time": "latency_p95", "coverage": "coverage_pct"}
_TEXT = re.compile(
    r"^\s*(?P<name>[A-Za-z][\w.-]*)\s*(?:\{(?P<labels>[^{}]*)\}\s*)?(?P<op><=|>=|==|!=|=|<|>|≤|≥|≠)\s*"
    r"(?P<threshold>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>[A-Za-zµ%]*)\s*$"
)


_LABEL = re.compile(
    r"\s*(?P<key>[A-Za-z_]\w*)\s*=\s*(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|(?P<bare>[\w./:-]+))\s*(?:,|$)"
)
_NONSPACE = re.compile(r"\S")
LABEL_EXAMPLE = 'api.responses{status="503"} >= 1'


def accepted_units(dimension: Dimension) -> list[str]:
    return [unit for unit, (dim, _) in UNITS.items() if dim is dimension]


def metric_dimension(metric: str) -> Dimension | None:
    """The dimension a metric's name implies (latency_* → duration), or None if unknown."""
    return next((dim for pattern, dim in _METRIC_DIMENSIONS if pattern.search(metric)), None)


@dataclass(frozen=True)
class Criterion:
    metric: str
    op: Op
    threshold: float
    unit: str = ""
    probe: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    phase: str | None = None

    def __post_init__(self) -> None:
        if self.phase is not None and self.phase not in PHASES:
            raise ToleranceError(
                f"unknown phase {self.phase!r} in {self.metric}; accepted: {', '.join(PHASES)}"
            )
        if self.op not in OPS:
            raise ToleranceError(
                f"unknown comparison {self.op!r} in {self.metric}; accepted: {', '.join(OPS)}"
            )
        if not math.isfinite(self.threshold):
            raise ToleranceError(
                f"threshold of {self.metric} must be a finite number, got {self.threshold!r}"
            )
        if self.unit and self.unit not in UNITS:
            raise ToleranceError(
                f"unknown unit {self.unit!r} in {self.text()}; accepted: {', '.join(UNITS)} (or none)"
            )
        dimension = metric_dimension(self.metric)
        if self.unit and dimension is not None and UNITS[self.unit][0] is not dimension:
            raise ToleranceError(_mismatch(self.qualified, dimension, CANONICAL_UNIT[dimension], self.unit))

    @property
    def qualified(self) -> str:
        return f"{self.probe}.{self.metric}" if self.probe else self.metric

    def text(self) -> str:
        unit = "" if not self.unit else self.unit if self.unit == "%" else f" {self.unit}"
        return (
            f"{selector_text(self.phase, self.qualified, self.labels)} {self.op} {self.threshold:.12g}{unit}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "metric": self.qualified,
            "op": self.op,
            "threshold": self.threshold,
            "unit": self.unit,
            "labels": dict(self.labels),
            "phase": self.phase,
        }


def selector_text(phase: str | None, qualified: str, labels: Mapping[str, str]) -> str:
    """`phase.target.metric{label="value"}`: the written form of what a criterion selects."""
    shown = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return (f"{phase}." if phase else "") + qualified + (f"{{{shown}}}" if labels else "")


@dataclass(frozen=True)
class Verdict:
    criterion: Criterion
    actual: float | None
    unit: str
    passed: bool
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "criterion": self.criterion.text(),
            "expected": f"{self.criterion.op} {self.criterion.threshold:g}{self.criterion.unit}",
            "actual": self.actual,
            "unit": self.unit,
            "passed": self.passed,
            "note": self.note,
        }


def _mismatch(metric: str, dimension: Dimension, unit: str, given: str) -> str:
    return (
        f"{metric} is a {dimension.value} measured in {unit!r}, "
        f"so a threshold in {given!r} cannot be compared; "
        f"accepted units: {', '.join(accepted_units(dimension))} (or none, meaning {unit!r})"
    )


def _split_name(name: str) -> tuple[str | None, str]:
    probe, _, metric = name.rpartition(".")
    return (probe or None), metric


def split_selector(name: str) -> tuple[str | None, str | None, str]:
    """`recovery.api.error_rate` → ("recovery", "api", "error_rate"); a phase only as the first word."""
    first, dot, rest = name.partition(".")
    phase = first if dot and first in PHASES else None
    probe, metric = _split_name(rest if phase else name)
    return phase, probe, metric


def parse_labels(text: str, where: str) -> dict[str, str]:
    """`status="503", route="/x"` → {"status": "503", "route": "/x"}."""
    labels: dict[str, str] = {}
    at = 0
    while _NONSPACE.search(text, at):
        match = _LABEL.match(text, at)
        if not match:
            raise ToleranceError(
                f'could not read the label selector {{{text}}} of {where}: each label is name="value", '
                f"separated by commas; e.g. {LABEL_EXAMPLE}"
            )
        quoted = match["dq"] if match["dq"] is not None else match["sq"]
        labels[match["key"]] = quoted if quoted is not None else match["bare"]
        at = match.end()
    return labels


def parse_criterion(text: str) -> Criterion:
    """ "latency_p95 < 200ms" → Criterion(metric="latency_p95", op="<", threshold=200, unit="ms").

    The full form is `phase.target.metric{label="value"} op threshold unit`, every part but the
    metric optional.
    """
    match = _TEXT.match(text)
    if not match:
        raise ToleranceError(f"could not read {text!r} as a criterion; examples: {EXAMPLES}")
    phase, probe, metric = split_selector(match["name"])
    labels = parse_labels(match["labels"], match["name"]) if match["labels"] is not None else {}
    op = _OP_ALIASES.get(match["op"], match["op"])
    return Criterion(
        metric, cast(Op, op), float(match["threshold"]), _unit(match["unit"]), probe, labels, phase
    )


def _unit(unit: str) -> str:
    lowered = unit.lower()
    return lowered if lowered in UNITS or unit == "" else unit


class _CriterionLike(Protocol):
    metric: str
    op: str
    threshold: float
    unit: str


@singledispatch
def to_criterion(value: object) -> Criterion:
    """A criterion from text, a mapping, a Criterion, or any object with metric/op/threshold/unit."""
    if all(hasattr(value, attr) for attr in ("metric", "op", "threshold", "unit")):
        like = cast(_CriterionLike, value)
        return _from_mapping(
            {
                "metric": like.metric,
                "op": like.op,
                "threshold": like.threshold,
                "unit": like.unit,
                "labels": getattr(value, "labels", None) or {},
                "phase": getattr(value, "phase", None),
                "probe": getattr(value, "measured_by", None),
            }
        )
    raise ToleranceError(f"cannot read a criterion from {type(value).__name__}; examples: {EXAMPLES}")


@to_criterion.register
def _(value: Criterion) -> Criterion:
    return value


@to_criterion.register
def _(value: str) -> Criterion:
    return parse_criterion(value)


@to_criterion.register(Mapping)
def _from_mapping(value: Mapping[str, object]) -> Criterion:
    unknown = set(value) - {"metric", "op", "threshold", "unit", "probe", "labels", "phase"}
    if unknown:
        raise ToleranceError(
            f"unknown key(s) {sorted(unknown)} in criterion; "
            "accepted: metric, op, threshold, unit, probe, labels, phase"
        )
    metric, op, threshold = value.get("metric"), value.get("op"), value.get("threshold")
    if not isinstance(metric, str) or not metric or not isinstance(op, str):
        raise ToleranceError(f"a criterion needs a metric name and an op; examples: {EXAMPLES}")
    unit = value.get("unit") or ""
    if isinstance(threshold, str):  # {"threshold": "200ms"}
        parsed = parse_criterion(f"{metric} {op} {threshold}")
        threshold, unit = parsed.threshold, unit or parsed.unit
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ToleranceError(f"threshold of {metric} must be a number, got {threshold!r}")
    selector, _, written = metric.partition("{")
    phase, probe, name = split_selector(selector)
    labels: dict[str, str] = {}
    if written:
        if not written.endswith("}"):
            raise ToleranceError(f"could not read the label selector of {metric!r}; e.g. {LABEL_EXAMPLE}")
        labels = parse_labels(written[:-1], selector)
    probe = cast("str | None", value.get("probe")) or probe
    given = value.get("labels") or {}
    if not isinstance(given, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int) and not isinstance(v, bool) for k, v in given.items()
    ):
        raise ToleranceError(f'labels of {metric} must map label names to values, e.g. {{"status": "503"}}')
    labels |= {k: str(v) for k, v in given.items()}
    named_phase = value.get("phase")
    if named_phase is not None:
        if not isinstance(named_phase, str) or named_phase not in PHASES:
            raise ToleranceError(
                f"unknown phase {named_phase!r} in {metric}; accepted: {', '.join(PHASES)} "
                "(or none: success criteria then judge the window)"
            )
        if phase is not None and phase != named_phase:
            raise ToleranceError(f"{metric} names phase {phase!r} but its phase field says {named_phase!r}")
        phase = named_phase
    op = _OP_ALIASES.get(op, op)
    if op not in get_args(Op):
        raise ToleranceError(f"unknown comparison {op!r} in {metric}; accepted: {', '.join(OPS)}")
    return Criterion(name, cast(Op, op), float(threshold), _unit(str(unit)), probe, labels, phase)


def convert(value: float, from_unit: str, to_unit: str, metric: str) -> float:
    """`value` in `from_unit` expressed in `to_unit`; ToleranceError if they do not compare."""
    if from_unit == to_unit or not from_unit or not to_unit:
        return value
    source, target = UNITS.get(from_unit), UNITS.get(to_unit)
    if source is None or target is None or source[0] is not target[0]:
        dimension = target[0] if target else None
        if dimension is None:
            raise ToleranceError(
                f"{metric} is measured in {to_unit!r}, so a threshold in {from_unit!r} cannot be compared; "
                f"accepted units: {to_unit!r} (or none)"
            )
        raise ToleranceError(_mismatch(metric, dimension, to_unit, from_unit))
    return value * source[1] / target[1]


def _matches(criterion: Criterion, measurement: Measurement) -> bool:
    if measurement.metric != criterion.metric:
        return False
    if criterion.probe is not None and measurement.probe != criterion.probe:
        return False
    return all(measurement.labels.get(key) == val for key, val in criterion.labels.items())


def _candidates(criterion: Criterion, measurements: Sequence[Measurement]) -> list[Measurement]:
    found = [m for m in measurements if _matches(criterion, m)]
    alias = METRIC_ALIASES.get(criterion.metric)
    if not found and alias:
        found = [m for m in measurements if _matches(dataclasses.replace(criterion, metric=alias), m)]
    if criterion.labels:
        return found or _uncounted(criterion, measurements)
    unlabelled = [m for m in found if not m.labels]
    return unlabelled or found


def _uncounted(criterion: Criterion, measurements: Sequence[Measurement]) -> list[Measurement]:
    """A count per label value (responses by status) that a sample did not see is zero, not unmeasured:
    one zero per probe that counted the same metric by the same labels in that sample."""
    keys = set(criterion.labels)
    family = [
        m
        for m in measurements
        if m.metric == criterion.metric
        and m.unit == "count"
        and criterion.probe in (None, m.probe)
        and keys <= set(m.labels)
    ]
    zeros: dict[str, Measurement] = {}
    for m in family:
        zeros.setdefault(
            m.probe,
            dataclasses.replace(m, value=0.0, labels=dict(criterion.labels), note="none in this sample"),
        )
    return list(zeros.values())


def _threshold_in(criterion: Criterion, measurement: Measurement) -> float:
    unit = criterion.unit
    if not unit:
        dimension = metric_dimension(criterion.metric)
        unit = CANONICAL_UNIT[dimension] if dimension and measurement.unit in UNITS else ""
    return convert(criterion.threshold, unit, measurement.unit, criterion.qualified)


def _missing(criterion: Criterion, measurements: Sequence[Measurement]) -> Verdict:
    measured = sorted({f"{m.probe}.{m.metric}" for m in measurements}) or ["nothing"]
    note = f"no measurement of {criterion.qualified}; probes measured: {', '.join(measured)}"
    problems = sorted({m.note for m in measurements if m.note and criterion.probe in (None, m.probe)})
    if problems:
        note += "; probe notes: " + "; ".join(problems)
    return Verdict(criterion, None, criterion.unit, False, note)


def evaluate(
    criterion: Criterion | str | Mapping[str, object], measurements: Iterable[Measurement]
) -> Verdict:
    """Compare the criterion with the matching measurements; every one of them must pass.

    Matching: same metric, same probe when the criterion names one, the criterion's labels
    when it has any — otherwise the unlabelled (overall) figures are preferred to the
    per-route/per-command ones. The verdict reports the first failing value, else the one
    closest to the threshold, in the criterion's unit when it has one.
    """
    crit = to_criterion(criterion)
    pool = list(measurements)
    candidates = _candidates(crit, pool)
    if not candidates:
        return _missing(crit, pool)
    results = [(m, _holds(crit, m)) for m in candidates]
    failing = [m for m, ok in results if not ok]
    chosen = failing[0] if failing else _closest(crit, candidates)
    unit = crit.unit or chosen.unit
    actual = convert(chosen.value, chosen.unit, unit, crit.qualified) if crit.unit else chosen.value
    where = f"{chosen.probe}.{chosen.metric}" + "".join(f" {k}={v}" for k, v in sorted(chosen.labels.items()))
    note = f"{where} = {actual:g}{unit}" if math.isfinite(actual) else f"{where} is not a number"
    if len(candidates) > 1:
        note += f" ({len(failing)} of {len(candidates)} measurements fail)"
    if chosen.note:
        note += f"; {chosen.note}"
    return Verdict(crit, actual, unit, not failing, note)


def _holds(criterion: Criterion, measurement: Measurement) -> bool:
    if not math.isfinite(measurement.value):
        return False
    return OPS[criterion.op](measurement.value, _threshold_in(criterion, measurement))


def _closest(criterion: Criterion, candidates: list[Measurement]) -> Measurement:
    return min(candidates, key=lambda m: abs(m.value - _threshold_in(criterion, m)))


def evaluate_all(
    criteria: Iterable[Criterion | str | Mapping[str, object]], measurements: Iterable[Measurement]
) -> tuple[list[Verdict], bool]:
    """Every criterion's verdict, and whether all hold (the steady state)."""
    pool = list(measurements)
    verdicts = [evaluate(criterion, pool) for criterion in criteria]
    return verdicts, all(verdict.passed for verdict in verdicts)
