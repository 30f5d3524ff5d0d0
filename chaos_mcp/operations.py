"""Operator commands from a shell: abort, arm, recover, report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaos_mcp.config import Settings
from chaos_mcp.engine.core import Engine, EngineError
from chaos_mcp.engine.journal import FaultRow
from chaos_mcp.engine.lifecycle import State
from chaos_mcp.engine.reverter import in_force, owed, recheck_since, revert_faults


async def abort(settings: Settings, reason: str, out: Any) -> int:
    async with Engine.running(settings) as engine:
        result = await engine.abort_all(reason)
    _print_swept(result["removed_stray_toxics"], out)
    still = in_force(result["reverted"])
    print(
        f"aborted {len(result['aborted'])} experiment(s), reverted {len(result['reverted']) - len(still)} "
        f"fault(s) in {result['seconds']}s; injections refused until `chaos-mcp arm`",
        file=out,
    )
    _print_in_force(still, out)
    return 1 if still else 0


async def abort_if_active(settings: Settings, reason: str) -> None:
    """A signal to the server: the kill switch if anything is injected, a quiet exit otherwise."""
    async with Engine.running(settings) as engine:
        if owed(engine.journal):
            await engine.abort_all(reason)


def arm(settings: Settings, out: Any) -> int:
    from chaos_mcp.engine.journal import Journal

    journal = Journal(settings.journal.resolved_url())
    Engine(settings, journal).arm()
    journal.close()
    print("armed: injections are allowed again", file=out)
    return 0


async def recover(settings: Settings, out: Any) -> int:
    """Revert what the journal shows as active or failed to revert, re-verify what it calls reverted
    (the last RECHECK_WINDOW) against the system, free stale holds. Idempotent; exit 1 while any
    fault is still in force, with one line per fault saying what to do."""
    async with Engine.running(settings) as engine:
        steps = await _recover(engine, lambda experiment_id, deadline: True, "chaos-mcp recover")
        _free_stale_holds(engine, min_age=0.0)
        _print_swept(await _sweep(settings, engine), out)
    still = in_force(steps)
    done = [s for s in steps if s["status"] == "COMPLETE" and not s["detail"].startswith("already")]
    again = [s for s in done if s["detail"].startswith("found in effect")]
    print(
        f"recovered {len(done)} fault(s), {len(again)} of them found in effect although the journal said "
        f"reverted; {len(still)} still in force",
        file=out,
    )
    for step in steps:
        if step["status"] == "UNVERIFIED":
            print(f"  UNVERIFIED {step['fault_id']} ({step['description']}): {step['detail']}", file=out)
    _print_in_force(still, out)
    return 1 if still else 0


def _print_in_force(steps: list[dict[str, Any]], out: Any) -> None:
    for step in steps:
        print(
            f"  IN FORCE {step['fault_id']} of {step['experiment_id']} ({step['description']}): "
            f"{step['detail']}",
            file=out,
        )


async def _sweep(settings: Settings, engine: Engine) -> list[str]:
    from chaos_mcp.engine.proxies import sweep_stray_toxics  # httpx loads only when needed

    return await sweep_stray_toxics(settings, engine.journal)


def _print_swept(swept: list[str], out: Any) -> None:
    if swept:
        print(f"removed {len(swept)} toxic(s) added outside any experiment: {', '.join(swept)}", file=out)


async def _recover(engine: Engine, orphaned: Callable[[str, float], bool], by: str) -> list[dict[str, Any]]:
    """Revert the active faults of orphaned experiments and mark those experiments aborted; retry
    failed reverts; re-verify recently reverted faults against the system."""
    candidates: list[FaultRow] = owed(engine.journal, recheck_since())
    live = ("pending", "injected")
    rows = [r for r in candidates if r.status not in live or orphaned(r.experiment_id, r.deadline)]
    steps = await revert_faults(engine.journal, rows)
    injected = {r.id: r for r in engine.journal.list_experiments(state=State.INJECTED, limit=10_000)}
    active = {r.experiment_id for r in engine.journal.active_faults()}
    stranded = {e for e, row in injected.items() if e not in active and orphaned(e, row.updated_at + 60)}
    was_active = {r.experiment_id for r in rows if r.status in live}
    for experiment_id in sorted(was_active | stranded):
        engine.journal.transition(
            experiment_id, [State.INJECTED], State.ABORTED, {"reason": "recovered after a crash", "by": by}
        )
        engine.journal.append(experiment_id, "recovered", {"by": by})
    return steps


def _free_stale_holds(engine: Engine, min_age: float) -> None:
    """Holds of experiments that never got injected (a crash between taking the target and injecting)."""
    import time

    for target, experiment_id in engine.journal.holds().items():
        row = engine.journal.get_experiment(experiment_id)
        if row is None or (row.state != State.INJECTED and time.time() - row.updated_at >= min_age):
            engine.journal.release_hold(target, experiment_id)  # kept while a fault is in force


async def report(
    settings: Settings, experiment_id: str | None, since: str | None, until: str | None, fmt: str, out: Any
) -> int:
    from chaos_mcp.reports.render import generate_report

    async with Engine.running(settings) as engine:
        try:
            result = generate_report(engine, experiment_id, since, until, fmt)
        except EngineError as exc:
            print(f"chaos-mcp: {exc}", file=out)
            return 2
    key = {"markdown": "markdown", "json": "json", "html": "html"}[fmt]
    value = result[key]
    if fmt == "json":
        import json

        value = json.dumps(value, indent=2)
    print(value, file=out)
    return 0


def is_orphaned(engine: Engine, experiment_id: str, deadline: float) -> bool:
    """True when no live server owns this experiment: its deadline passed, or its owner process is gone."""
    import os
    import socket
    import time

    if time.time() >= deadline:
        return True
    injected = [e.data for e in engine.journal.events(experiment_id, ["faults_injected"])]
    owner = injected[-1].get("owner") if injected else None
    if not owner or owner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def recover_orphans(settings: Settings) -> int:
    """What `serve` runs at start: revert faults that no live server owns (past deadline or owner dead),
    retry failed reverts, re-verify recently reverted faults; log every fault still in force."""
    import structlog

    async with Engine.running(settings) as engine:
        steps = await _recover(
            engine, lambda e, deadline: is_orphaned(engine, e, deadline), "chaos-mcp serve"
        )
        _free_stale_holds(engine, min_age=60.0)
    for step in in_force(steps):
        structlog.get_logger("chaos_mcp.serve").error(
            "fault_in_force",
            fault_id=step["fault_id"],
            experiment_id=step["experiment_id"],
            description=step["description"],
            detail=step["detail"],
        )
    return len(steps)


async def start_proxies(settings: Settings) -> None:
    """At `serve` start: the fault proxy and the targets' proxies, or a warning saying why not."""
    import structlog

    from chaos_mcp.engine.proxies import ensure_proxies

    try:
        await ensure_proxies(settings)
    except EngineError as exc:
        structlog.get_logger("chaos_mcp.serve").warning("proxy_unavailable", reason=str(exc))
