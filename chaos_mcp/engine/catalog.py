"""Read-only views for agents: targets, scenarios, contingency analysis."""

from __future__ import annotations

from typing import Any

import anyio

from chaos_mcp.config import ScheduleTarget, Settings, Target
from chaos_mcp.engine.core import EngineError
from chaos_mcp.engine.journal import RESOURCE_PREFIX
from chaos_mcp.probes.base import ProbeError
from chaos_mcp.resources import Identity, identify_all, overlaps, sharing
from chaos_mcp.scenarios.base import scenarios
from chaos_mcp.secrets import redact_url


async def targets_now(settings: Settings, holds: dict[str, str]) -> list[dict[str, Any]]:
    """The targets with their identities as the systems report them right now (bounded wait)."""
    return targets(settings, holds, await identify_all(settings))


def targets(
    settings: Settings, holds: dict[str, str], identities: dict[str, Identity] | None = None
) -> list[dict[str, Any]]:
    shared = sharing(identities) if identities is not None else {}
    result = []
    for name, target in settings.targets.items():
        entry: dict[str, Any] = {
            "name": name,
            "kind": target.kind,
            "environment": target.environment,
            "description": target.description,
            "sensitive": target.sensitive,
            "proxy": target.proxy.model_dump() if target.proxy else None,
            "busy_with": holds.get(name),
            "scenarios": [s.name for s in scenarios().values() if target.kind in s.target_kinds],
            **_metrics(name, target),
        }
        if identities is not None:
            entry |= _identity(identities[name], shared[name])
            entry["busy_with"] = entry["busy_with"] or _held_through(identities[name], holds)
        for attr in ("dsn", "url", "base_url"):
            value = getattr(target, attr, None)
            if value:
                entry[attr] = redact_url(value)
        result.append(entry)
    return result


def _metrics(name: str, target: Target) -> dict[str, Any]:
    """What the target's probes measure: criteria may name these (and only these) metrics."""
    from chaos_mcp.probes.registry import target_metrics  # the probes' clients load on first use

    try:
        return {"metrics": [m.as_dict() for m in target_metrics(name, target)]}
    except ProbeError as exc:
        return {"metrics": [], "metrics_unavailable": f"its probes are misconfigured: {exc}"}


def derived_metrics() -> list[dict[str, Any]]:
    """The metrics the server computes for an experiment as a whole (success criteria only)."""
    from chaos_mcp.probes.catalog import DERIVED

    return [d.spec.as_dict() | {"where": d.where} for d in DERIVED.values()]


def _held_through(identity: Identity, holds: dict[str, str]) -> str | None:
    """The experiment whose fault reaches this target through what it physically is (another name for
    its database, or its whole server), if any."""
    # A target known only by its server (a tcp endpoint answering as Redis) is held through the server.
    whole = identity.database or (identity.instance if identity.unknown is None else None)
    mine = [key for key in (whole, identity.listener, identity.working_copy) if key]
    for held, experiment_id in holds.items():
        key = held.removeprefix(RESOURCE_PREFIX)
        if held.startswith(RESOURCE_PREFIX) and any(overlaps(key, own) for own in mine):
            return experiment_id
    return None


def _identity(identity: Identity, shares: list[str]) -> dict[str, Any]:
    """What the target physically is: the instance serving it and the other targets it serves."""
    if identity.instance is None and identity.unknown is None:
        return {"instance": None, "shares_instance_with": []}
    return {
        "instance": identity.instance_label or None,
        "resource": identity.label if identity.database else None,
        "identified_by": identity.how or None,
        "identity_unknown": identity.unknown,
        "shares_instance_with": shares,
    }


def scenario_list() -> list[dict[str, Any]]:
    return [s.describe() for s in scenarios().values()]


async def contingency(settings: Settings, target_name: str, depth: int) -> dict[str, Any]:
    target = settings.targets.get(target_name)
    if not isinstance(target, ScheduleTarget):
        schedule_targets = [n for n, t in settings.targets.items() if isinstance(t, ScheduleTarget)]
        raise EngineError(
            f"analyze_contingency needs a schedule target; {target_name!r} is "
            f"{'not configured' if target is None else 'a ' + target.kind + ' target'}. "
            f"Schedule targets: {', '.join(schedule_targets) or 'none'}."
        )
    from chaos_mcp.schedule.api import analyze_contingency

    result: dict[str, Any] = await anyio.to_thread.run_sync(analyze_contingency, target_name, target, depth)
    return result
