"""Coverage repair with OR-Tools CP-SAT.

Given a program whose removals are already applied, fill every uncovered (block, service)
slot with present, credentialed faculty who are free in that block, without pushing anyone
past their weekly half-day capacity or past six consecutive duty days, preferring the least
utilized and staying under the 80 % safe line where possible. The answer is all or nothing:
a complete set of reassignments (optimal or best feasible within the limit), or
``no_feasible_repair`` / ``timeout_no_solution`` with the reasons; never a partial roster.
The whole call, model building included, stays within ``time_limit_s``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from chaos_mcp.schedule.coverage import BoolArray, Coverage, IntArray, absent_matrix, build_coverage
from chaos_mcp.schedule.model import COVERING_ROLES, Assignment, Program, block_label
from chaos_mcp.schedule.utilization import SAFE_LINE, faculty_capacity

MIN_SOLVER_S = 0.005
GAP_LIMIT = 0.02  # stop once provably within 2 % of the best possible cost
BUILD_SHARE = 0.8  # model building may use up to this share of the limit
SOLVER_SHARE = 0.92  # of what is left: CP-SAT stops a little after its own limit
SOLVER_STOP_S = 0.02  # and its workers take this long to wind down on a busy machine
WORKERS = 8  # the full portfolio (LP-based workers prove these models fast) even on few cores
STATUS = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "no_feasible_repair",
    cp_model.MODEL_INVALID: "no_feasible_repair",
    cp_model.UNKNOWN: "timeout_no_solution",
}


@dataclass(frozen=True)
class Gap:
    slot: int
    block: int
    service: int
    deficit: int
    candidates: tuple[int, ...]


def repair(
    program: Program, time_limit_s: float, window_days: tuple[int, int] | None = None
) -> dict[str, object]:
    started = time.perf_counter()
    cov = build_coverage(program)
    busy, week_load, duty = _existing(program)
    gaps = _gaps(program, cov, busy, window_days)
    base: dict[str, object] = {
        "time_limit_s": time_limit_s,
        "removed": list(program.removed_faculty),
        "uncovered_before": sum(g.deficit for g in gaps),
        "window_days": list(window_days) if window_days else [0, program.days - 1],
    }
    if not gaps:
        return _answer(base, "optimal", [], ["no uncovered slots: nothing to repair"], started)
    empty = [g for g in gaps if len(g.candidates) < g.deficit]
    if empty:
        return _answer(base, "no_feasible_repair", [], _candidate_reasons(program, cov, busy, empty), started)
    deadline = started + time_limit_s * BUILD_SHARE
    try:
        if time.perf_counter() > deadline:
            raise _OutOfTime
        model, x = _model(program, gaps, week_load, duty, cov, deadline)
    except _OutOfTime:
        why = (
            f"the {time_limit_s:g} s limit ran out while building the model "
            f"({len(gaps)} gap slot(s)); retry with a longer limit"
        )
        return _answer(base, "timeout_no_solution", [], [why], started)
    solver = cp_model.CpSolver()
    remaining = time_limit_s - (time.perf_counter() - started)
    budget = remaining * SOLVER_SHARE - SOLVER_STOP_S
    solver.parameters.max_time_in_seconds = max(MIN_SOLVER_S, budget)
    solver.parameters.num_workers = WORKERS
    solver.parameters.relative_gap_limit = GAP_LIMIT
    code = solver.solve(model)
    status = STATUS.get(code, "timeout_no_solution")
    if status in ("optimal", "feasible"):
        chosen = [(f, g) for (f, gi), var in x.items() for g in [gaps[gi]] if solver.value(var)]
        return _answer(base, status, _rows(program, cov, chosen), [], started, solver.wall_time)
    if status == "timeout_no_solution":
        reasons = [
            f"the solver found no complete repair within {time_limit_s:g} s; retry with a longer limit"
        ]
    else:
        reasons = _capacity_reasons(program, gaps, week_load) or [
            "weekly capacity and the one-day-off-in-7 limit together leave no complete assignment"
        ]
    return _answer(base, status, [], reasons, started, solver.wall_time)


def _existing(program: Program) -> tuple[BoolArray, IntArray, BoolArray]:
    """busy[f, block], week_load[f, week] and duty[f, day] from current covering assignments."""
    index = {f.id: i for i, f in enumerate(program.faculty)}
    n = len(program.faculty)
    busy = np.zeros((n, program.blocks), dtype=np.bool_)
    for a in program.assignments:
        i = index.get(a.person)
        if i is not None and a.role in COVERING_ROLES and 0 <= a.block < program.blocks:
            busy[i, a.block] = True
    duty = np.asarray(busy.reshape(n, program.days, 2).any(axis=2), dtype=np.bool_)
    return busy, _per_week(busy.astype(np.int64)), duty


def _per_week(grid: IntArray) -> IntArray:
    weeks = (grid.shape[1] + 13) // 14
    padded = np.zeros((grid.shape[0], weeks * 14), dtype=grid.dtype)
    padded[:, : grid.shape[1]] = grid
    out: IntArray = padded.reshape(grid.shape[0], weeks, 14).sum(axis=2)
    return out


def week_capacity(program: Program) -> IntArray:
    """(faculty, week) half-days each may work: weekly capacity scaled by the blocks present."""
    present = _per_week((~absent_matrix(program, [f.id for f in program.faculty])).astype(np.int64))
    per_block = np.array([f.half_days_per_week / 14.0 for f in program.faculty])[:, None]
    out: IntArray = np.floor(present * per_block + 1e-9).astype(np.int64)
    return out


def _gaps(program: Program, cov: Coverage, busy: np.ndarray, window: tuple[int, int] | None) -> list[Gap]:
    deficit = cov.req - cov.count
    out = []
    for slot in np.nonzero(deficit > 0)[0]:
        b = int(cov.slot_block[slot])
        if window and not window[0] <= b // 2 <= window[1]:
            continue
        free = cov.eligible[:, slot] & ~busy[:, b] & ~cov.covers[:, slot]
        out.append(
            Gap(int(slot), b, int(cov.slot_service[slot]), int(deficit[slot]), tuple(np.nonzero(free)[0]))
        )
    return out


class _OutOfTime(Exception):
    """The time limit ran out while the model was being built."""


def _model(
    program: Program, gaps: list[Gap], week_load: np.ndarray, duty: np.ndarray, cov: Coverage, deadline: float
) -> tuple[cp_model.CpModel, dict[tuple[int, int], cp_model.IntVar]]:
    model = cp_model.CpModel()
    capacity = faculty_capacity(program)
    load = cov.covers.sum(axis=1).astype(np.float64)
    util = np.divide(load, capacity, out=np.zeros_like(load), where=capacity > 0)
    week_cap = week_capacity(program)
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    per_block: dict[tuple[int, int], list[cp_model.IntVar]] = defaultdict(list)
    per_week: dict[tuple[int, int], list[cp_model.IntVar]] = defaultdict(list)
    per_day: dict[tuple[int, int], list[cp_model.IntVar]] = defaultdict(list)
    costs: list[int] = []
    for gi, gap in enumerate(gaps):
        if gi % 16 == 0 and time.perf_counter() > deadline:
            raise _OutOfTime
        options = []
        week = gap.block // 14
        for f in gap.candidates:
            var = model.new_bool_var(f"x_{f}_{gi}")
            x[(f, gi)] = var
            options.append(var)
            costs.append(_cost(f, week, float(util[f]), week_load, week_cap))
            per_block[(f, gap.block)].append(var)
            per_week[(f, week)].append(var)
            per_day[(f, gap.block // 2)].append(var)
        model.add(cp_model.LinearExpr.sum(options) >= gap.deficit)
    for vars_ in per_block.values():
        if len(vars_) > 1:
            model.add_at_most_one(vars_)
    for (f, week), vars_ in per_week.items():
        spare = int(week_cap[f, week]) - int(week_load[f, week])
        if spare < len(vars_):
            model.add(cp_model.LinearExpr.sum(vars_) <= max(0, spare))
    _days_off(model, program, duty, per_day, deadline)
    model.minimize(cp_model.LinearExpr.weighted_sum(list(x.values()), costs))
    return model, x


def _cost(f: int, week: int, util: float, week_load: np.ndarray, week_cap: np.ndarray) -> int:
    """Prefer the least utilized overall and that week; past the 80 % safe line costs much more."""
    cap = max(1, int(week_cap[f, week]))
    week_share = (int(week_load[f, week]) + 1) / cap
    return 10 + int(10 * util) + int(10 * week_share) + (40 if week_share > SAFE_LINE else 0)


def _days_off(
    model: cp_model.CpModel,
    program: Program,
    duty: np.ndarray,
    per_day: dict[tuple[int, int], list[cp_model.IntVar]],
    deadline: float,
) -> None:
    """No window of 7 consecutive days may become all duty days (windows already over are left alone)."""
    limit = program.rules.max_consecutive_duty_days
    width = limit + 1
    new_day: dict[tuple[int, int], cp_model.IntVar] = {}
    for (f, day), vars_ in per_day.items():
        if duty[f, day]:
            continue
        y = model.new_bool_var(f"d_{f}_{day}")
        for var in vars_:
            model.add_implication(var, y)
        new_day[(f, day)] = y
    by_faculty: dict[int, list[int]] = defaultdict(list)
    for f, day in new_day:
        by_faculty[f].append(day)
    if program.days < width:
        return
    kernel = np.ones(width, dtype=np.int64)
    for f, days in by_faculty.items():
        if time.perf_counter() > deadline:
            raise _OutOfTime
        fresh = np.zeros(program.days, dtype=np.int64)
        fresh[days] = 1
        fixed_w = np.convolve(duty[f].astype(np.int64), kernel, mode="valid")
        fresh_w = np.convolve(fresh, kernel, mode="valid")
        for start in np.nonzero((fixed_w + fresh_w > limit) & (fixed_w <= limit))[0]:
            window = [new_day[(f, d)] for d in range(int(start), int(start) + width) if fresh[d]]
            model.add(cp_model.LinearExpr.sum(window) <= limit - int(fixed_w[start]))


def _rows(program: Program, cov: Coverage, chosen: list[tuple[int, Gap]]) -> list[dict[str, object]]:
    rows = []
    for f, gap in sorted(chosen, key=lambda item: (item[1].block, item[1].service, item[0])):
        rows.append(
            {
                "faculty_id": program.faculty[f].id,
                "name": program.faculty[f].name,
                "block": gap.block,
                "when": block_label(program, gap.block),
                "service": program.services[gap.service].id,
                "role": "primary",
            }
        )
    return rows


def _candidate_reasons(program: Program, cov: Coverage, busy: np.ndarray, gaps: list[Gap]) -> list[str]:
    out = []
    for gap in gaps[:20]:
        svc = program.services[gap.service]
        eligible = int(cov.eligible[:, gap.slot].sum())
        needs = f" (needs {', '.join(svc.required_credentials)})" if svc.required_credentials else ""
        if eligible == 0:
            why = "no remaining faculty is present and holds the required credentials" + needs
        else:
            why = f"all {eligible} eligible faculty are already working that block"
        out.append(f"{block_label(program, gap.block)} {svc.id}: short {gap.deficit}, {why}")
    if len(gaps) > 20:
        out.append(f"... and {len(gaps) - 20} more slot(s) with too few candidates")
    return out


def _capacity_reasons(program: Program, gaps: list[Gap], week_load: np.ndarray) -> list[str]:
    out = []
    by_week: dict[int, list[Gap]] = defaultdict(list)
    for gap in gaps:
        by_week[gap.block // 14].append(gap)
    for week, items in sorted(by_week.items()):
        needed = sum(g.deficit for g in items)
        people = {f for g in items for f in g.candidates}
        week_cap = week_capacity(program)
        spare = sum(max(0, int(week_cap[f, week]) - int(week_load[f, week])) for f in people)
        if needed > spare:
            out.append(
                f"week {week + 1}: {needed} slot(s) to fill but the eligible faculty have only {spare} "
                "half-day(s) of weekly capacity left"
            )
    return out


def _answer(
    base: dict[str, object],
    status: str,
    rows: list[dict[str, object]],
    reasons: list[str],
    started: float,
    solver_s: float = 0.0,
) -> dict[str, object]:
    uncovered = int(base["uncovered_before"])  # type: ignore[call-overload]
    filled = status in ("optimal", "feasible")
    return {
        **base,
        "status": status,
        "assignments": rows,
        "changes": len(rows),
        "uncovered_after": 0 if filled else uncovered,
        "reasons": reasons,
        "solve_time_s": round(time.perf_counter() - started, 4),
        "solver_wall_time_s": round(solver_s, 4),
    }


def apply_repair(program: Program, result: dict[str, object]) -> Program:
    """The program with a repair's assignments added (for before/after reports and tests)."""
    rows = result.get("assignments")
    assert isinstance(rows, list), "not a repair result: no 'assignments' list"
    extra = tuple(
        Assignment(str(r["faculty_id"]), int(r["block"]), str(r["service"]), "primary") for r in rows
    )
    return program.replace(assignments=program.assignments + extra)
