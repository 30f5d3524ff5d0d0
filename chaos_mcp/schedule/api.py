"""The facade the engine, the MCP tools and the probe call. Pure, synchronous, JSON-able results.

Every function loads the program with the target's active overlays (the working copy in
the state dir), so a fault injected by any process is seen here.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from chaos_mcp.config import ScheduleTarget
from chaos_mcp.schedule import overlay
from chaos_mcp.schedule.analysis import Analysis, analyze, metrics, n1_report, n2_report
from chaos_mcp.schedule.errors import ScheduleError
from chaos_mcp.schedule.model import Program
from chaos_mcp.schedule.utilization import summary as utilization_summary

PICKS = ("highest_utilized", "most_critical_pair")
_METRICS_MEMO_SIZE = 64
_metrics_memo: dict[tuple[object, str], dict[str, float]] = {}


def load_program(target: ScheduleTarget, target_name: str | None = None) -> Program:
    """The target's program; with `target_name`, its active overlays (faults) applied."""
    base = _base_program(target)
    if target_name is None:
        return base
    return overlay.apply_overlays(base, overlay.read_overlays(target_name))


def schedule_metrics(target_name: str, target: ScheduleTarget) -> dict[str, float]:
    """The probe's metrics (N-1 and N-2 included): computed once per program and set of overlays.

    The probe samples every supervised experiment each interval; recomputing the same N-2
    analysis for an unchanged program kept a server with many experiments saturated.
    """
    overlays = overlay.read_overlays(target_name)

    def compute() -> dict[str, float]:
        return metrics(analyze(overlay.apply_overlays(_base_program(target), overlays), depth=2))

    program_key = _program_key(target)
    if program_key is None:  # read from PostgreSQL: it may change between two samples
        return compute()
    key = (program_key, json.dumps(overlays, sort_keys=True, default=str))
    found = _metrics_memo.get(key)
    if found is None:
        found = compute()
        if len(_metrics_memo) >= _METRICS_MEMO_SIZE:
            _metrics_memo.pop(next(iter(_metrics_memo)), None)
        _metrics_memo[key] = found
    return dict(found)


def validate(target_name: str, target: ScheduleTarget) -> dict[str, object]:
    """Validation problems and ACGME violations, each named."""
    a = analyze(load_program(target, target_name), depth=1)
    return {
        "problems": [p.as_dict() for p in a.problems],
        "acgme_violations": [v.as_dict() for v in a.violations],
        "conflicts": [p.as_dict() for p in a.problems if p.code.startswith("conflict_")],
    }


def analyze_contingency(target_name: str, target: ScheduleTarget, depth: int) -> dict[str, object]:
    if depth not in (1, 2):
        raise ScheduleError(f"depth must be 1 (N-1) or 2 (N-1 and all N-2 pairs), got {depth}")
    a = analyze(load_program(target, target_name), depth=depth)
    n1 = n1_report(a)
    n2 = n2_report(a) if depth == 2 else None
    return {
        "target": target_name,
        "depth": depth,
        "faculty": len(a.program.faculty),
        "residents": len(a.program.residents),
        "blocks": a.program.blocks,
        "removed_faculty": list(a.program.removed_faculty),
        "metrics": metrics(a),
        "utilization": utilization_summary(a.program, a.util),
        "n1": n1,
        "n2": n2,
        "cascade": a.cascade,
        "defense_level": {"level": int(a.level), "name": a.level.name, "reasons": a.level_reasons},
        "acgme": {"violations": len(a.violations), "first": [v.as_dict() for v in a.violations[:10]]},
        "validation": [p.as_dict() for p in a.problems[:20]],
        "timings_ms": a.elapsed_ms,
        "summary": _summary(a, n1, n2),
    }


def pick_faculty(target_name: str, target: ScheduleTarget, how: str) -> list[str]:
    a = analyze(load_program(target, target_name), depth=2 if how == "most_critical_pair" else 1)
    if how == "highest_utilized":
        busiest = a.busiest()
        if busiest is None:
            raise ScheduleError(f"target {target_name!r} has no active faculty left to pick")
        return [a.program.faculty[busiest].id]
    if how == "most_critical_pair":
        pair = a.most_critical_pair()
        if pair is None:
            raise ScheduleError(f"target {target_name!r} has fewer than two active faculty; no pair to pick")
        return [a.program.faculty[i].id for i in pair]
    raise ScheduleError(f"unknown pick {how!r}; accepted: {', '.join(PICKS)}")


def suggest_repair(
    target_name: str, target: ScheduleTarget, removed: list[str], time_limit_s: float
) -> dict[str, object]:
    from chaos_mcp.schedule.repair import repair

    program = load_program(target, target_name)
    known = {f.id for f in program.faculty}
    unknown = [r for r in removed if r not in known]
    if unknown:
        raise ScheduleError(f"unknown faculty id(s) {', '.join(unknown)}; known ids look like {min(known)}")
    limit = (
        time_limit_s
        if program.repair_time_limit_s is None
        else min(time_limit_s, program.repair_time_limit_s)
    )
    return repair(
        overlay.apply_overlays(program, [{"kind": "remove_faculty", "faculty_ids": removed}]), limit
    )


def _summary(a: Analysis, n1: list[dict[str, object]], n2: dict[str, object] | None) -> str:
    gaps = sum(1 for r in n1 if r["gap_slots"] != 0)
    critical = sum(1 for r in n1 if r["severity"] == "critical")
    text = (
        f"Defense level {a.level.name}: coverage {a.coverage_pct:.1f}%, "
        f"program utilization {a.util.rho:.2f}, {len(a.violations)} ACGME violation(s). "
        f"N-1: {gaps} of {len(n1)} faculty leave gaps when lost ({critical} critical)"
    )
    if n1:
        top = n1[0]
        text += f"; most critical {top['faculty_id']} ({top['gap_slots']} gap slot(s), {top['severity']})"
    if n2:
        text += (
            f". N-2: {n2['pairs_with_gaps']} of {n2['pairs_evaluated']} pairs leave gaps, "
            f"{n2['pairs_critical']} critical"
        )
    return text + "."


def _program_key(target: ScheduleTarget) -> tuple[str, str | int, int, int, int] | None:
    """What identifies the target's base program; None when it cannot be known without reading it."""
    if target.source == "synthetic":
        return ("synthetic", target.seed, target.faculty, target.residents, target.days)
    if target.source.startswith("json:"):
        path = Path(target.source[5:]).expanduser()
        try:
            stat = path.stat()
        except OSError as exc:
            raise ScheduleError(
                f"schedule file {path} cannot be read ({exc.strerror}); check source = 'json:PATH'"
            ) from None
        return ("json", str(path.resolve()), stat.st_mtime_ns, stat.st_size, 0)
    return None


def _base_program(target: ScheduleTarget) -> Program:
    key = _program_key(target)
    if key is None:
        from chaos_mcp.data.source import load_postgres_program

        return load_postgres_program(target)
    if key[0] == "synthetic":
        return _synthetic(target.seed, target.faculty, target.residents, target.days)
    return _json(str(key[1]), key[2], key[3])


@functools.lru_cache(maxsize=8)
def _synthetic(seed: int, faculty: int, residents: int, days: int) -> Program:
    from chaos_mcp.schedule.synthetic import generate

    return generate(seed, faculty, residents, days)


@functools.lru_cache(maxsize=8)
def _json(path: str, mtime_ns: int, size: int) -> Program:
    from chaos_mcp.schedule.jsonfmt import load_json

    return load_json(Path(path))


def clear_cache() -> None:
    """Forget generated/parsed programs (tests; a changed generator)."""
    _synthetic.cache_clear()
    _json.cache_clear()
    _metrics_memo.clear()


__all__ = [
    "analyze_contingency",
    "clear_cache",
    "load_program",
    "pick_faculty",
    "schedule_metrics",
    "suggest_repair",
    "validate",
]
