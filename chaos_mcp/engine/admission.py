"""Everything checked before a fault may touch a system, in the order a person would check it.

Context drift, lifecycle, the kill switch, the baseline, the physical resources the faults act on,
policy and approvals, the proxy, the concurrency cap, and finally the holds: the targets (one active
experiment per target) and the resources (one experiment per resource, whatever the targets are
called). Each refusal says what was wrong and what to do; nothing here changes a target system.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chaos_mcp.contract import ExperimentDesign
from chaos_mcp.engine.errors import EngineError
from chaos_mcp.engine.footprint import Footprint, footprint
from chaos_mcp.engine.journal import RESOURCE_PREFIX, ExperimentRow
from chaos_mcp.engine.lifecycle import State, require
from chaos_mcp.engine.policy import Approver, Escalation, PolicyRefusal, escalations, require_approval
from chaos_mcp.resources import overlaps
from chaos_mcp.scenarios.base import scenarios

if TYPE_CHECKING:
    from chaos_mcp.engine.core import Engine

ARMED_KEY = "armed"


async def admit(
    engine: Engine,
    row: ExperimentRow,
    design: ExperimentDesign,
    environment: str,
    target_component: str,
    approver: Approver | None,
) -> list[str]:
    """Run every check; on success the experiment holds its targets. Returns the approval notes."""
    check_drift(design, environment, target_component)
    require("inject_failure", row.id, State(row.state))
    check_armed(engine)
    check_baseline(engine, row.id, design)
    touched = await measure_footprint(engine, row.id, design)
    approvals = await approve(engine, row.id, design, approver, touched.escalations)
    await ensure_proxy_if_needed(engine, design)
    check_capacity(engine)
    take_targets(engine, row.id, design, touched)
    return approvals


def check_drift(design: ExperimentDesign, environment: str, target_component: str) -> None:
    drift = [
        f"{name}: design says {want!r}, this call says {got!r}"
        for name, want, got in (
            ("environment", design.environment, environment),
            ("target_component", design.target_component, target_component),
        )
        if want != got
    ]
    if drift:
        raise EngineError(
            "context drift: inject_failure must restate the design exactly; "
            + "; ".join(drift)
            + ". Nothing was injected."
        )


def check_armed(engine: Engine) -> None:
    if engine.journal.get_control(ARMED_KEY) == "false":
        raise EngineError(
            "the kill switch is engaged: injections are refused until the operator re-arms with "
            "`chaos-mcp arm`."
        )


def check_baseline(engine: Engine, experiment_id: str, design: ExperimentDesign) -> None:
    found = [
        e.data for e in engine.journal.events(experiment_id, ["measurement"]) if e.data["phase"] == "baseline"
    ]
    baseline = found[-1] if found else None
    if baseline is not None and not baseline["steady"] and not design.baseline_known_degraded:
        raise EngineError(
            "the baseline is not steady (" + failed_criteria(baseline) + "); inject_failure is refused. Fix "
            "the system and call measure_steady_state again, or design the experiment with "
            "baseline_known_degraded=true."
        )


def failed_criteria(measurement: dict[str, Any]) -> str:
    bad = [
        v["criterion"] + f" (actual {v['actual']})"
        for v in measurement.get("verdicts", [])
        if not v["passed"]
    ]
    return "; ".join(bad) or "see the measurement"


async def measure_footprint(engine: Engine, experiment_id: str, design: ExperimentDesign) -> Footprint:
    try:
        return await footprint(engine, experiment_id, design)
    except PolicyRefusal as exc:
        engine.journal.append(experiment_id, "injection_refused", {"reason": str(exc)})
        raise EngineError(str(exc)) from None


async def approve(
    engine: Engine,
    experiment_id: str,
    design: ExperimentDesign,
    approver: Approver | None,
    shared: Sequence[Escalation] = (),
) -> list[str]:
    scenario = scenarios()[design.scenario]
    try:
        needed = escalations(
            engine.settings, design.target_component, design.environment, scenario.mutates_data
        ) + list(shared)
        return await require_approval(
            needed,
            approver,
            f"{design.scenario} on {design.target_component} ({design.environment}) "
            f"for {design.duration_s:g}s",
        )
    except PolicyRefusal as exc:
        engine.journal.append(experiment_id, "injection_refused", {"reason": str(exc)})
        raise EngineError(str(exc)) from None


async def ensure_proxy_if_needed(engine: Engine, design: ExperimentDesign) -> None:
    scenario = scenarios()[design.scenario]
    params = scenario.Parameters.model_validate(design.parameters)
    if scenario.uses_proxy or getattr(params, "method", None) == "proxy":
        from chaos_mcp.engine.proxies import ensure_proxies  # httpx loads only when needed

        await ensure_proxies(engine.settings)


def check_capacity(engine: Engine) -> None:
    active = [r for r in engine.journal.list_experiments(limit=1000) if State(r.state) == State.INJECTED]
    limit = engine.settings.policy.max_concurrent
    if len(active) >= limit:
        raise EngineError(
            f"{len(active)} experiments are already injected (policy.max_concurrent = {limit}); "
            "roll one back first."
        )


def take_targets(engine: Engine, experiment_id: str, design: ExperimentDesign, touched: Footprint) -> None:
    """Take every target of the blast radius and every resource the faults act on, or none."""
    names = list(dict.fromkeys([design.target_component, *design.blast_radius.targets]))
    keys = names + [RESOURCE_PREFIX + r.key for r in touched.resources]
    conflict = engine.journal.acquire_holds(keys, experiment_id)
    if conflict is None:
        if touched.resources:
            engine.journal.append(
                experiment_id, "resources_held", {"resources": [r.label for r in touched.resources]}
            )
        return
    held, holder = conflict
    row = engine.journal.get_experiment(holder)
    via = f" (target {row.target!r})" if row is not None else ""
    if not held.startswith(RESOURCE_PREFIX):
        raise EngineError(
            f"target {held!r} is held by experiment {holder}, which is still active; "
            "roll it back (or abort_all) first. One active experiment per target."
        )
    key = held.removeprefix(RESOURCE_PREFIX)
    mine = next(r for r in touched.resources if overlaps(r.key, key))
    what = f"part of {mine.label} is" if key.startswith(mine.key + "/") else f"{mine.label} is"
    wider = " on what contains it (a whole server, or the database)" if mine.key.startswith(key + "/") else ""
    raise EngineError(
        f"{what} already under a fault of experiment {holder}{via}{wider}, which is still in force; "
        "roll it back (or abort_all; `chaos-mcp recover` if its revert failed) first. Faults of "
        "different experiments never act on one resource, whatever the targets are called. Nothing "
        "was injected."
    )
