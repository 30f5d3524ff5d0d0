"""Utilization = required / available capacity, its levels and the queueing wait multiplier."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from chaos_mcp.schedule.coverage import Coverage, absent_matrix
from chaos_mcp.schedule.model import Program

SAFE_LINE = 0.80
FloatArray = npt.NDArray[np.float64]


class Level(IntEnum):
    GREEN = 0
    YELLOW = 1
    ORANGE = 2
    RED = 3
    BLACK = 4


def level_of(rho: float) -> Level:
    """GREEN < 0.70 ≤ YELLOW < 0.80 ≤ ORANGE < 0.90 ≤ RED < 0.95 ≤ BLACK."""
    for bound, level in ((0.70, Level.GREEN), (0.80, Level.YELLOW), (0.90, Level.ORANGE), (0.95, Level.RED)):
        if rho < bound:
            return level
    return Level.BLACK


def wait_multiplier(rho: float) -> float | None:
    """rho/(1-rho): how much longer work waits as utilization climbs; None at or past saturation."""
    return None if rho >= 1.0 else rho / (1.0 - rho)


@dataclass(frozen=True)
class Utilization:
    capacity: FloatArray  # per faculty, in half-day blocks over the horizon
    load: FloatArray  # per faculty, covered slots
    required: float

    @property
    def per_faculty(self) -> FloatArray:
        out: FloatArray = np.divide(
            self.load, self.capacity, out=np.zeros_like(self.load), where=self.capacity > 0
        )
        return out

    @property
    def rho(self) -> float:
        total = float(self.capacity.sum())
        return float("inf") if total <= 0 else self.required / total

    def rho_without(self, removed: FloatArray) -> float:
        """Program utilization once the faculty flagged in `removed` (0/1 weights) are gone."""
        total = float(self.capacity.sum() - (self.capacity * removed).sum())
        return float("inf") if total <= 0 else self.required / total


def faculty_capacity(program: Program) -> FloatArray:
    ids = [f.id for f in program.faculty]
    present = (~absent_matrix(program, ids)).sum(axis=1)
    per_block = np.array([f.half_days_per_week / 14.0 for f in program.faculty], dtype=np.float64)
    out: FloatArray = per_block * present
    return out


def utilization(program: Program, coverage: Coverage) -> Utilization:
    return Utilization(
        capacity=faculty_capacity(program),
        load=coverage.covers.sum(axis=1).astype(np.float64),
        required=float(coverage.required_total),
    )


def summary(program: Program, util: Utilization) -> dict[str, object]:
    per = util.per_faculty
    rho = util.rho
    return {
        "program_utilization": round(rho, 4),
        "level": level_of(rho).name,
        "safe_line": SAFE_LINE,
        "above_safe_line": rho >= SAFE_LINE,
        "wait_multiplier": None if (m := wait_multiplier(rho)) is None else round(m, 3),
        "faculty": {
            f.id: {"utilization": round(float(per[i]), 4), "level": level_of(float(per[i])).name}
            for i, f in enumerate(program.faculty)
            if f.id not in program.removed_faculty
        },
    }
