"""One pass over a program: coverage, utilization, ACGME, validation and contingency."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from chaos_mcp.schedule import acgme, contingency
from chaos_mcp.schedule.contingency import N1, N2, SEVERITY_RANK, severity
from chaos_mcp.schedule.coverage import Coverage, build_coverage
from chaos_mcp.schedule.errors import Problem
from chaos_mcp.schedule.model import Program
from chaos_mcp.schedule.utilization import Level, Utilization, level_of, utilization, wait_multiplier
from chaos_mcp.schedule.validate import validate_program


@dataclass(frozen=True)
class Analysis:
    program: Program
    cov: Coverage
    util: Utilization
    first: N1
    second: N2 | None
    violations: list[acgme.Violation]
    problems: list[Problem]
    cascade: dict[str, object]
    level: Level
    level_reasons: list[str]
    elapsed_ms: dict[str, float]

    @property
    def coverage_pct(self) -> float:
        total = self.cov.required_total
        return 100.0 if total == 0 else 100.0 * (total - self.cov.uncovered) / total

    @property
    def active(self) -> np.ndarray:
        return self.first.active

    def busiest(self) -> int | None:
        if not self.active.size:
            return None
        per = self.util.per_faculty[self.active]
        return int(self.active[int(np.argmax(per))])

    def most_critical_pair(self) -> tuple[int, int] | None:
        if self.second is None or not len(self.second.pairs):
            return None
        return tuple(self.second.pairs[int(self.pair_order()[0])])  # type: ignore[return-value]

    def pair_order(self) -> np.ndarray:
        s = self.second
        assert s is not None
        sev = _severity_ranks(s.affected, s.sole)
        return np.lexsort((-s.rho_after, -s.affected, -s.new_uncovered, -sev))


def _severity_ranks(affected: np.ndarray, sole: np.ndarray) -> np.ndarray:
    ranks = np.where(affected > 5, 2, np.where(affected > 0, 1, 0))
    return np.where(sole > 0, 3, ranks)


def analyze(program: Program, depth: int = 2) -> Analysis:
    clock: dict[str, float] = {}
    t = time.perf_counter()
    cov = build_coverage(program)
    util = utilization(program, cov)
    clock["model_ms"] = _ms(t)
    t = time.perf_counter()
    first = contingency.n1(program, cov, util)
    clock["n1_ms"] = _ms(t)
    second = None
    if depth >= 2:
        t = time.perf_counter()
        second = contingency.n2(program, cov, util, first)
        clock["n2_ms"] = _ms(t)
    t = time.perf_counter()
    violations = acgme.check(program, cov)
    problems = validate_program(program)
    clock["acgme_ms"] = _ms(t)
    partial = Analysis(program, cov, util, first, second, violations, problems, {}, Level.GREEN, [], clock)
    busiest = partial.busiest()
    casc = contingency.cascade(program, util, [busiest] if busiest is not None else [])
    failures = int(casc.get("cascade_failures", 0))  # type: ignore[call-overload]
    level, reasons = contingency.defense_level(util, partial.coverage_pct, first, second, failures)
    if any(p.code.startswith("conflict_") for p in problems):
        level, reasons = max(level, Level.ORANGE), [*reasons, "contradictory requirements (see validation)"]
    return Analysis(program, cov, util, first, second, violations, problems, casc, level, reasons, clock)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def metrics(a: Analysis) -> dict[str, float]:
    per = a.util.per_faculty[a.active] if a.active.size else np.zeros(1)
    n1_gaps = a.first.new_uncovered[a.active] if a.active.size else np.zeros(1, dtype=np.int64)
    return {
        "coverage_pct": round(a.coverage_pct, 3),
        "uncovered_slots": float(a.cov.uncovered),
        "required_slots": float(a.cov.required_total),
        "max_utilization": round(float(per.max()), 4),
        "mean_utilization": round(float(per.mean()), 4),
        "program_utilization": round(min(a.util.rho, 99.0), 4),
        "acgme_violations": float(len(a.violations)),
        "validation_errors": float(sum(1 for p in a.problems if p.severity == "error")),
        "defense_level": float(int(a.level)),
        "n1_critical": float(int((n1_gaps > 0).sum())),
        "faculty_active": float(a.active.size),
    }


def n1_report(a: Analysis, limit_gaps: int = 10) -> list[dict[str, object]]:
    rows = []
    per = a.util.per_faculty
    for i in a.active:
        i = int(i)
        affected, sole = int(a.first.new_uncovered[i]), int(a.first.sole[i])
        rho_after = float(a.first.rho_after[i])
        rows.append(
            {
                "faculty_id": a.program.faculty[i].id,
                "name": a.program.faculty[i].name,
                "utilization": round(float(per[i]), 4),
                "gap_slots": affected,
                "sole_provider_slots": sole,
                "severity": severity(affected, sole),
                "program_utilization_after": round(rho_after, 4),
                "level_after": level_of(rho_after).name,
                "wait_multiplier_after": _rounded(wait_multiplier(rho_after)),
                "gaps": contingency.gap_slots(a.program, a.cov, [i], limit_gaps) if affected else [],
            }
        )
    rows.sort(key=_n1_order)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def _n1_order(row: dict[str, Any]) -> tuple[int, int, float]:
    return (-SEVERITY_RANK[str(row["severity"])], -int(row["gap_slots"]), -float(row["utilization"]))


def n2_report(a: Analysis, top: int = 10) -> dict[str, object]:
    s = a.second
    if s is None:
        return {}
    ranks = _severity_ranks(s.affected, s.sole)
    rows = []
    for k in a.pair_order()[:top]:
        f, g = (int(x) for x in s.pairs[int(k)])
        rows.append(
            {
                "faculty_ids": [a.program.faculty[f].id, a.program.faculty[g].id],
                "gap_slots": int(s.affected[k]),
                "uncovered_slots_added": int(s.new_uncovered[k]),
                "sole_provider_slots": int(s.sole[k]),
                "severity": severity(int(s.affected[k]), int(s.sole[k])),
                "program_utilization_after": round(float(s.rho_after[k]), 4),
                "level_after": level_of(float(s.rho_after[k])).name,
            }
        )
    return {
        "pairs_evaluated": len(s.pairs),
        "pairs_with_gaps": int((s.affected > 0).sum()),
        "pairs_critical": int((ranks == 3).sum()),
        "pairs_high": int((ranks == 2).sum()),
        "worst_program_utilization_after": round(float(s.rho_after.max()), 4) if len(s.pairs) else None,
        "most_critical": rows,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
