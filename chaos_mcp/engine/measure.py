"""Steady-state measurement: run the probes of the experiment's targets, judge the criteria.

Observed: the design's target, its blast radius's targets, and any target a criterion names.
A target whose probes cannot be built, or a probe that fails to run, becomes a `probe_error`
measurement saying why (secrets masked); the other probes' figures still count.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from chaos_mcp.config import Settings
from chaos_mcp.contract import ExperimentDesign
from chaos_mcp.criteria import Criterion, parse_criterion
from chaos_mcp.engine.verdicts import evaluate_all
from chaos_mcp.probes.base import Measurement, Probe, ProbeError
from chaos_mcp.secrets import redact_text

PROBE_GRACE = 1.0
FULL_BUDGET = "(its full budget)"  # in a probe_timeout's note: the probe had all its time, not a round's


class Measurer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._probes: dict[str, list[Probe]] = {}

    def probes(self, target_name: str, options: dict[str, Any] | None = None) -> list[Probe]:
        key = f"{target_name}:{sorted((options or {}).items(), key=str)}"
        if key not in self._probes:
            from chaos_mcp.probes.registry import probes_for_target  # heavy clients load on first use

            target = self.settings.targets[target_name]
            secrets = frozenset(self.settings.secrets())
            self._probes[key] = probes_for_target(target_name, target, options, secrets)
        return self._probes[key]

    def observed(self, design: ExperimentDesign) -> list[str]:
        """The targets this experiment observes, in configuration order."""
        named = {design.target_component, *design.blast_radius.targets}
        criteria = [
            *design.steady_state,
            *design.success_criteria,
            *design.abort_conditions,
            *design.detection_signals,
        ]
        for criterion in criteria:
            named.update(criterion.metric.split(".")[:-1])  # "[phase.]target.metric"
        return [name for name in self.settings.targets if name in named]

    def steady_state_criteria(self, design: ExperimentDesign) -> list[Criterion]:
        if design.steady_state:
            return design.steady_state
        from chaos_mcp.probes.registry import DEFAULT_STEADY_STATE

        defaults = DEFAULT_STEADY_STATE.get(design.target_kind, [])
        return [_qualified(parse_criterion(text), design.target_component) for text in defaults]

    def options_for(self, design: ExperimentDesign, target_name: str) -> dict[str, Any] | None:
        """Routes in the blast radius go to the HTTP targets it names; Prometheus queries from config."""
        target = self.settings.targets[target_name]
        options: dict[str, Any] = {}
        in_radius = target_name in (design.target_component, *design.blast_radius.targets)
        if design.blast_radius.routes and target.kind == "http" and in_radius:
            options["routes"] = list(design.blast_radius.routes)
        if target.prometheus:
            options["prometheus"] = [q.model_dump(exclude_none=True) for q in target.prometheus]
        return options or None

    async def sample(self, design: ExperimentDesign, budget: float | None = None) -> list[Measurement]:
        """One round of every target's probes, concurrently.

        Each probe is bounded by its own timeout and by `budget` (what is left of a sampling
        interval): a late probe becomes a `probe_timeout` measurement, and the others still count.
        """
        results: list[Measurement] = []

        async def run(target_name: str, probe: Probe) -> None:
            started = time.time()
            full = probe.timeout + PROBE_GRACE
            limit = full if budget is None else min(full, budget)
            with anyio.move_on_after(limit) as scope:
                try:
                    results.extend(await probe.sample())
                except Exception as exc:  # a probe's own defect must not end the observation
                    why = f"probe {probe.name} could not run: {type(exc).__name__}: {exc}"
                    results.append(self._probe_error(target_name, why, started))
            if scope.cancelled_caught:
                results.append(
                    Measurement(
                        probe=target_name,
                        metric="probe_timeout",
                        value=1.0,
                        unit="count",
                        started_at=started,
                        # a report may call a target hung only on timeouts with the probe's full budget
                        note=f"probe {probe.name} did not answer in {limit:.3g}s "
                        + (FULL_BUDGET if limit >= full else f"(the round's budget; its own is {full:.3g}s)"),
                    )
                )

        planned: list[tuple[str, Probe]] = []
        for name in self.observed(design):
            try:
                planned += [(name, p) for p in self.probes(name, self.options_for(design, name))]
            except ProbeError as exc:
                results.append(
                    self._probe_error(name, f"cannot probe {name}: {exc}. Fix the target in chaos.toml.")
                )
        async with anyio.create_task_group() as tg:
            for name, probe in planned:
                tg.start_soon(run, name, probe)
        return results

    def _probe_error(self, target_name: str, why: str, started: float | None = None) -> Measurement:
        note = redact_text(why, self.settings.secrets())[:500]
        return Measurement(
            probe=target_name,
            metric="probe_error",
            value=1.0,
            unit="count",
            started_at=started or time.time(),
            note=note,
        )

    async def measure(self, design: ExperimentDesign) -> dict[str, Any]:
        measurements = await self.sample(design)
        verdicts = evaluate_all(self.steady_state_criteria(design), measurements)
        return {
            "taken_at": time.time(),
            "steady": all(v.passed for v in verdicts),
            "observed": self.observed(design),
            "probe_errors": [
                {"target": m.probe, "why": m.note} for m in measurements if m.metric == "probe_error"
            ],
            "verdicts": [v.as_dict() for v in verdicts],
            "measurements": [m.as_dict() for m in measurements],
        }


def _qualified(criterion: Criterion, target_name: str) -> Criterion:
    if "." in criterion.metric:
        return criterion
    return criterion.model_copy(update={"metric": f"{target_name}.{criterion.metric}"})
