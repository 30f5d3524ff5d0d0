"""Read-only views for agents: targets, scenarios, contingency analysis."""

from __future__ import annotations

from typing import Any

import anyio

from chaos_mcp.config import ScheduleTarget, Settings
from chaos_mcp.engine.core import EngineError
from chaos_mcp.resources import Identity, identify_all, sharing
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
        }
        if identities is not None:
            entry |= _identity(identities[name], shared[name])
        for attr in ("dsn", "url", "base_url"):
            value = getattr(target, attr, None)
            if value:
                entry[attr] = redact_url(value)
        result.append(entry)
    return result


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
