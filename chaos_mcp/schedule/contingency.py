"""N-1 and N-2 contingency, cascade simulation and the overall defense level.

With ``slack = covering - required`` per slot, removing a set R raises a slot's shortfall
exactly when ``|R ∩ coverers| > slack``. For one person that is "covers a slot with
slack ≤ 0"; for a pair {f, g} the shortfall added is

    n1[f] + n1[g] + |covers_f ∩ covers_g ∩ {slack = 1}|

so all F*(F-1)/2 pairs come from one matrix product, with no pruning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chaos_mcp.schedule.coverage import Coverage
from chaos_mcp.schedule.model import Program, block_label
from chaos_mcp.schedule.utilization import Level, Utilization, level_of

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SEVERITY_RANK = {"none": 0, "medium": 1, "high": 2, "critical": 3}


def severity(affected: int, sole: int) -> str:
    """critical if sole provider anywhere, high if more than 5 blocks affected, else medium."""
    if sole > 0:
        return "critical"
    if affected > 5:
        return "high"
    return "medium" if affected > 0 else "none"


@dataclass(frozen=True)
class N1:
    active: IntArray  # faculty indices analysed (not already removed)
    new_uncovered: IntArray  # per faculty index (len F)
    sole: IntArray
    rho_after: FloatArray


@dataclass(frozen=True)
class N2:
    pairs: IntArray  # (K, 2) faculty indices, i < j
    new_uncovered: IntArray  # (K,) slots of shortfall added; also the slots affected is below
    affected: IntArray
    sole: IntArray
    rho_after: FloatArray


def active_faculty(program: Program) -> IntArray:
    removed = set(program.removed_faculty)
    return np.array([i for i, f in enumerate(program.faculty) if f.id not in removed], dtype=np.int64)


def n1(program: Program, cov: Coverage, util: Utilization) -> N1:
    slack = cov.slack
    tight = cov.covers[:, slack <= 0]
    only = cov.covers[:, cov.eligible.sum(axis=0) == 1]
    eye = np.eye(len(cov.faculty_ids))
    rho = np.array([util.rho_without(eye[i]) for i in range(len(cov.faculty_ids))])
    return N1(
        active=active_faculty(program),
        new_uncovered=tight.sum(axis=1).astype(np.int64),
        sole=only.sum(axis=1).astype(np.int64),
        rho_after=rho,
    )


def n2(program: Program, cov: Coverage, util: Utilization, first: N1) -> N2:
    slack = cov.slack
    elig_count = cov.eligible.sum(axis=0)
    c0 = cov.covers[:, slack <= 0].astype(np.float32)
    c1 = cov.covers[:, slack == 1].astype(np.float32)
    e2 = cov.eligible[:, (elig_count == 2) & (cov.count > 0)].astype(np.float32)
    both1 = np.rint(c1 @ c1.T).astype(np.int64)
    both0 = np.rint(c0 @ c0.T).astype(np.int64)
    pair_only = np.rint(e2 @ e2.T).astype(np.int64)
    act = first.active
    ii, jj = np.triu_indices(len(act), k=1)
    f, g = act[ii], act[jj]
    n1u, sole1 = first.new_uncovered, first.sole
    cap = util.capacity
    remaining = float(cap.sum()) - cap[f] - cap[g]
    rho = np.divide(util.required, remaining, out=np.full(len(f), np.inf), where=remaining > 0)
    return N2(
        pairs=np.stack([f, g], axis=1),
        new_uncovered=n1u[f] + n1u[g] + both1[f, g],
        affected=n1u[f] + n1u[g] - both0[f, g] + both1[f, g],
        sole=sole1[f] + sole1[g] + pair_only[f, g],
        rho_after=rho,
    )


def gap_slots(
    program: Program, cov: Coverage, removed: list[int], limit: int = 20
) -> list[dict[str, object]]:
    """The slots left short once `removed` (faculty indices) are gone, before any repair."""
    k = cov.covers[removed].sum(axis=0) if removed else np.zeros(len(cov.req), dtype=np.int64)
    after = cov.count - k
    worse = np.nonzero(np.maximum(0, cov.req - after) > np.maximum(0, cov.req - cov.count))[0]
    elig = cov.eligible.copy()
    elig[removed] = False
    out = []
    for slot in worse[:limit]:
        b = int(cov.slot_block[slot])
        out.append(
            {
                "block": b,
                "when": block_label(program, b),
                "service": program.services[int(cov.slot_service[slot])].id,
                "required": int(cov.req[slot]),
                "covered_after": int(after[slot]),
                "sole_provider": not bool(elig[:, slot].any()),
            }
        )
    return out


def cascade(program: Program, util: Utilization, removed: list[int]) -> dict[str, object]:
    """Spread the lost load over the rest by capacity; anyone pushed past the limit fails next."""
    limit = program.rules.cascade_limit
    alive = np.zeros(len(util.capacity), dtype=np.bool_)
    alive[active_faculty(program)] = True
    load = util.load.copy()
    failing = list(removed)
    rounds: list[dict[str, object]] = []
    while failing:
        alive[failing] = False
        lost = float(load[failing].sum())
        load[failing] = 0.0
        cap_alive = float(util.capacity[alive].sum())
        if cap_alive <= 0:
            rounds.append(
                {"round": len(rounds) + 1, "failed": _ids(program, failing), "max_utilization": None}
            )
            return {"rounds": rounds, "collapsed": True, "survivors": 0, "final_utilization": None}
        load[alive] += lost * util.capacity[alive] / cap_alive
        u = np.divide(load, util.capacity, out=np.zeros_like(load), where=util.capacity > 0)
        rounds.append(
            {
                "round": len(rounds) + 1,
                "failed": _ids(program, failing),
                "max_utilization": round(float(u[alive].max()), 4),
            }
        )
        failing = [int(i) for i in np.nonzero(alive & (u > limit))[0]]
    survivors = int(alive.sum())
    final = float(load[alive].sum() / util.capacity[alive].sum()) if survivors else None
    return {
        "limit": limit,
        "rounds": rounds,
        "cascade_failures": sum(len(r["failed"]) for r in rounds[1:]),  # type: ignore[arg-type,misc]
        "collapsed": survivors == 0,
        "survivors": survivors,
        "final_utilization": None if final is None else round(final, 4),
    }


def _ids(program: Program, indices: list[int]) -> list[str]:
    return [program.faculty[i].id for i in indices]


def coverage_level(coverage_pct: float) -> Level:
    for bound, level in ((100.0, Level.GREEN), (98.0, Level.YELLOW), (95.0, Level.ORANGE), (90.0, Level.RED)):
        if coverage_pct >= bound - 1e-9:
            return level
    return Level.BLACK


def defense_level(
    util: Utilization, coverage_pct: float, first: N1, second: N2 | None, cascade_failures: int
) -> tuple[Level, list[str]]:
    """The worst of: utilization, current coverage, worst single loss, worst pair loss, cascade."""
    parts: list[tuple[Level, str]] = [
        (level_of(util.rho), f"program utilization {util.rho:.2f} is {level_of(util.rho).name}"),
        (
            coverage_level(coverage_pct),
            f"coverage {coverage_pct:.1f}% is {coverage_level(coverage_pct).name}",
        ),
    ]
    if first.active.size:
        worst = float(first.rho_after[first.active].max())
        parts.append((level_of(worst), f"after the worst single loss utilization is {worst:.2f}"))
        if int(first.sole[first.active].sum()):
            parts.append((Level.ORANGE, "someone is the sole eligible provider for some slot (N-1 insecure)"))
    if second is not None and len(second.pairs):
        worst2 = float(second.rho_after.max())
        parts.append(
            (Level(max(0, level_of(worst2) - 1)), f"after the worst pair loss utilization is {worst2:.2f}")
        )
        if int((second.sole > 0).sum()):
            parts.append((Level.YELLOW, "some pair of faculty are the only eligible providers for a slot"))
    if cascade_failures:
        parts.append(
            (Level.ORANGE, f"losing the busiest member cascades into {cascade_failures} more failure(s)")
        )
    level = max(p[0] for p in parts)
    return level, [reason for lvl, reason in parts if lvl == level and lvl > Level.GREEN] or [
        "all indicators GREEN"
    ]
