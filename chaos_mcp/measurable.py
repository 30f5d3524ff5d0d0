"""Is every criterion of a design on something that is measured? The design-time check of the grammar.

`phase.target.metric{labels}`: the target must be in the blast radius (or another configured
target the criterion names, watched but not affected) and measure the metric
(the probes' catalogue, `probes.registry.target_metrics`), the labels must be ones the metric
carries, and the phase must fit the kind of criterion. A bare `metric` means the design's
target_component when it measures it, else the one blast-radius target that does (several →
refused, naming them). Derived metrics (`recovery_time`, `detection_time`) are computed by the
engine and count as measured for success criteria only: nothing can stop an experiment, or
define its steady state, on a figure known only at its end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chaos_mcp.config import PHASES, Settings
from chaos_mcp.criteria import Criterion
from chaos_mcp.probes.base import ProbeError
from chaos_mcp.probes.catalog import DERIVED, MetricSpec
from chaos_mcp.probes.tolerance import METRIC_ALIASES

PHASES_OF = {
    "success_criteria": PHASES,
    "abort_conditions": ("during", "recovery"),
    "detection_signals": ("during",),
    "steady_state": (),
}
"""Phases each kind of criterion may name (none: the kind's own default)."""


@dataclass(frozen=True)
class Catalogue:
    """The metrics of each blast-radius target (and each other target a criterion names), and why a
    target has none."""

    metrics: dict[str, list[MetricSpec]]
    broken: dict[str, str]
    radius: tuple[str, ...]

    def spec(self, target: str, name: str) -> MetricSpec | None:
        found = {m.name: m for m in self.metrics.get(target, [])}
        return found.get(name) or found.get(METRIC_ALIASES.get(name, ""))

    def listing(self, targets: Iterable[str] | None = None) -> str:
        names = list(targets) if targets is not None else list(self.radius)
        parts = [f"{t}: {', '.join(m.text() for m in self.metrics[t]) or 'none'}" for t in names]
        parts += [f"{t}: none ({why})" for t, why in self.broken.items() if t in names]
        derived = ", ".join(f"{d.spec.text()}" for d in DERIVED.values())
        return "; ".join(parts) + f"; derived for success criteria: {derived}"


def catalogue(settings: Settings, radius: Sequence[str], named: Iterable[str | None] = ()) -> Catalogue:
    """The catalogue of the blast radius, plus the configured targets in `named` (criteria's targets)."""
    from chaos_mcp.probes.registry import target_metrics  # the probes' clients load on first use

    metrics: dict[str, list[MetricSpec]] = {}
    broken: dict[str, str] = {}
    for name in dict.fromkeys([*radius, *(n for n in named if n)]):
        target = settings.targets.get(name)
        if target is None:
            continue
        try:
            metrics[name] = target_metrics(name, target)
        except ProbeError as exc:
            broken[name] = f"its probes are misconfigured: {exc}"
            metrics[name] = []
        if not metrics[name] and name not in broken:
            broken[name] = f"no probe measures a {target.kind} target"
    return Catalogue(metrics, broken, tuple(radius))


def check_measured(
    field: str, criteria: Sequence[Criterion], component: str, catalogue: Catalogue
) -> tuple[list[Criterion], list[tuple[str, str]]]:
    """The criteria with bare metrics qualified by the target that measures them, and the problems
    as (field path, message)."""
    resolved: list[Criterion] = []
    problems: list[tuple[str, str]] = []
    for index, criterion in enumerate(criteria):
        where = f"{field}[{index}]"
        try:
            resolved.append(_resolve(field, criterion, component, catalogue))
        except _Refused as exc:
            problems.append((where, str(exc)))
    return resolved, problems


class _Refused(Exception):
    pass


def _resolve(field: str, criterion: Criterion, component: str, catalogue: Catalogue) -> Criterion:
    allowed = PHASES_OF[field]
    if criterion.phase is not None and criterion.phase not in allowed:
        accepted = f"accepted here: {', '.join(allowed)}" if allowed else "steady state takes no phase"
        raise _Refused(f"{criterion.text()}: phase {criterion.phase!r} does not apply to {field}; {accepted}")
    if criterion.name in DERIVED:
        return _derived(field, criterion, catalogue)
    targets = list(catalogue.radius)
    target = criterion.target
    if target is None:
        target = _owner(field, criterion, component, catalogue)
    elif target not in catalogue.metrics:
        raise _Refused(_not_a_target(criterion, target, targets))
    spec = catalogue.spec(target, criterion.name)
    if spec is None:
        why = catalogue.broken.get(target)
        raise _Refused(
            f"{criterion.text()}: {target} does not measure {criterion.name!r}"
            + (f" ({why})" if why else "")
            + f", so it {_never(field)}"
            + f"; metrics of the blast radius: {catalogue.listing()}"
        )
    if not spec.accepts(criterion.labels):
        unknown = sorted(set(criterion.labels) - set(spec.labels))
        carried = ", ".join(spec.labels) or "none"
        raise _Refused(
            f"{criterion.text()}: {target}.{spec.name} has no label {', '.join(map(repr, unknown))}; "
            f"its labels: {carried}"
        )
    return criterion if criterion.target else criterion.model_copy(update={"measured_by": target})


def _derived(field: str, criterion: Criterion, catalogue: Catalogue) -> Criterion:
    derived = DERIVED[criterion.name]
    if field != "success_criteria":
        raise _Refused(
            f"{criterion.text()}: {criterion.name} is computed by the server ({derived.where}), known only "
            f"at the end, so it cannot serve in {field}; use it in success_criteria, and here a metric a "
            f"probe measures during the experiment: {catalogue.listing()}"
        )
    if criterion.phase is not None or criterion.labels:
        raise _Refused(f"{criterion.text()}: {criterion.name} takes neither a phase nor labels")
    if criterion.target is not None and criterion.target not in catalogue.metrics:
        raise _Refused(_not_a_target(criterion, criterion.target, list(catalogue.radius)))
    return criterion


def _owner(field: str, criterion: Criterion, component: str, catalogue: Catalogue) -> str:
    if catalogue.spec(component, criterion.name) is not None:
        return component
    measuring = [t for t in catalogue.radius if catalogue.spec(t, criterion.name) is not None]
    if len(measuring) == 1:
        return measuring[0]
    if measuring:
        raise _Refused(
            f"{criterion.text()}: {criterion.name!r} is measured by several targets of the blast radius "
            f"({', '.join(measuring)}) and not by {component}; name one: "
            + " or ".join(f"{t}.{criterion.name}" for t in measuring)
        )
    raise _Refused(
        f"{criterion.text()}: no probe of the blast radius measures {criterion.name!r}, so it "
        f"{_never(field)}; metrics of the blast radius: {catalogue.listing()}"
    )


def _never(field: str) -> str:
    if field == "abort_conditions":
        return "could never fire: the stop condition would not exist"
    return "could never be judged"


def _not_a_target(criterion: Criterion, target: str, targets: list[str]) -> str:
    first, dot, rest = target.partition(".")
    if (dot and rest in targets) or (dot and rest.partition(".")[0] in targets):
        return (
            f"{criterion.text()}: {first!r} is not a phase; phases: {', '.join(PHASES)} "
            f"(e.g. recovery.{rest}.{criterion.name})"
        )
    return (
        f"{criterion.text()}: {target!r} is not a configured target; the blast radius's targets: "
        f"{', '.join(targets) or 'none'} (list_targets shows the others); a phase, if any, comes first: "
        f"{', '.join(PHASES)}"
    )
