"""Chaos Toolkit activities (python providers) that drive chaos-mcp's engine.

An exported experiment (`chaos_mcp.interop.chaostoolkit.export_experiment`) names these
functions, so `chaos validate` can check their signatures and `chaos run` runs the same
scenario, probes and revert as the MCP tools. Every function opens the engine on the
configuration named by the experiment's `chaos_mcp_config` (else $CHAOS_MCP_CONFIG, then
./chaos.toml, then the embedded default) and closes it before returning.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from chaos_mcp.config import Settings, load_settings
from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.lifecycle import ACTIVE_STATES, State
from chaos_mcp.probes.tolerance import OPS, convert

T = TypeVar("T")


def _settings(configuration: dict[str, Any] | None) -> Settings:
    path = (configuration or {}).get("chaos_mcp_config") or None
    return load_settings(str(path) if path else None)


def _with_engine(
    configuration: dict[str, Any] | None, job: Callable[[Engine], Awaitable[T]], keep_faults: bool = False
) -> T:
    """Run `job` on an engine; with keep_faults the faults outlive this call (until their deadline)."""
    settings = _settings(configuration)
    if keep_faults:
        policy = settings.policy.model_copy(update={"on_disconnect": "continue"})
        settings = settings.model_copy(update={"policy": policy})

    async def main() -> T:
        async with Engine.running(settings) as engine:
            return await job(engine)

    return anyio.run(main)


def metric_value(
    target: str, metric: str, unit: str = "", configuration: dict[str, Any] | None = None
) -> float:
    """Probe `target` once and return `metric` in `unit` (the unit its criterion is written in)."""

    async def job(engine: Engine) -> float:
        found = []
        for probe in engine.measurer.probes(target):
            found += [m for m in await probe.sample() if m.metric == metric and not m.labels]
        if not found:
            raise ValueError(f"target {target!r} has no measurement named {metric!r}")
        return convert(found[0].value, found[0].unit, unit, metric)

    return _with_engine(configuration, job)


def compare(value: float | None = None, op: str = "<", threshold: float = 0.0) -> bool:
    """A tolerance: does `value <op> threshold` hold?"""
    if op not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    return value is not None and OPS[op](float(value), float(threshold))


def start_experiment(design: dict[str, Any], configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Design, take the baseline and inject; the faults end at their deadline on their own."""

    async def job(engine: Engine) -> dict[str, Any]:
        experiment_id = engine.design(design)["experiment_id"]
        baseline = await engine.measure(experiment_id)
        if not baseline["steady"] and not design.get("baseline_known_degraded"):
            raise RuntimeError(f"baseline not steady for {experiment_id}; nothing injected")
        injected = await engine.inject(experiment_id, design["environment"], design["target_component"])
        return {
            "experiment_id": experiment_id,
            "injected": injected["injected"],
            "deadline": injected["deadline"],
        }

    return _with_engine(configuration, job, keep_faults=True)


def rollback_target(target: str, configuration: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Roll back every experiment on `target` that is still injected or aborted (idempotent)."""

    async def job(engine: Engine) -> list[dict[str, Any]]:
        active = [
            r.id for r in engine.journal.list_experiments(limit=1000) if State(r.state) in ACTIVE_STATES
        ]
        results = []
        for experiment_id in active:
            row, _ = engine.load(experiment_id)
            if row.target == target:
                result = await engine.rollback(experiment_id)
                results.append({"experiment_id": experiment_id, "status": result["status"]})
        return results

    return _with_engine(configuration, job)
