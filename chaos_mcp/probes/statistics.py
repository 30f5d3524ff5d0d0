"""Percentiles, latency summaries and error rates: the arithmetic behind every probe.

Definitions (so a reader can check a report by hand):

- `percentile(values, q)` is numpy's default ("linear"): sort the values, take the rank
  `h = (n - 1) * q / 100`, and interpolate between the neighbours `x[floor(h)]` and
  `x[floor(h) + 1]`. With one value every percentile is that value. With no values there is
  no percentile: `StatisticsError`.
- `summarize(values)` gives count, min, mean, p50, p95, p99 and max; with no values it
  returns None (nothing was observed — callers omit the latency figures rather than
  inventing them).
- `error_rate(errors, total)` is `errors / total` as a ratio in [0, 1]. With zero requests
  there is no rate: it returns None, and probes then emit no `error_rate`, so a criterion on
  it fails with "no measurement" instead of passing on no evidence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from chaos_mcp.probes.base import Measurement


class StatisticsError(ValueError):
    """A statistic asked of data that cannot give it (no values, q outside 0..100)."""


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0 ≤ q ≤ 100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise StatisticsError("percentile of no values is undefined; measure at least one sample")
    return _sorted_percentile(ordered, q)


def _sorted_percentile(ordered: Sequence[float], q: float) -> float:
    if not 0.0 <= q <= 100.0:
        raise StatisticsError(f"percentile q must be between 0 and 100, got {q!r}")
    rank = (len(ordered) - 1) * (q / 100.0)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    if fraction == 0.0 or ordered[low] == ordered[high]:
        return float(ordered[low])
    # Same form as numpy's `_lerp`, which keeps the result inside [x[low], x[high]].
    below, above = float(ordered[low]), float(ordered[high])
    diff = above - below
    value = above - diff * (1.0 - fraction) if fraction >= 0.5 else below + diff * fraction
    return min(max(value, below), above)


@dataclass(frozen=True)
class LatencySummary:
    count: int
    min: float
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return {
            "count": float(self.count),
            "min": self.min,
            "mean": self.mean,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
        }


def summarize(values: Iterable[float]) -> LatencySummary | None:
    """Count, min, mean, p50/p95/p99 and max of the values; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return LatencySummary(
        count=len(ordered),
        min=float(ordered[0]),
        mean=math.fsum(ordered) / len(ordered),
        p50=_sorted_percentile(ordered, 50),
        p95=_sorted_percentile(ordered, 95),
        p99=_sorted_percentile(ordered, 99),
        max=float(ordered[-1]),
    )


def error_rate(errors: int, total: int) -> float | None:
    """errors / total as a ratio; None for zero requests (no evidence either way)."""
    if total < 0 or errors < 0:
        raise StatisticsError(f"counts cannot be negative (errors={errors}, total={total})")
    if errors > total:
        raise StatisticsError(f"more errors ({errors}) than requests ({total})")
    if total == 0:
        return None
    return errors / total


# ── the same figures as Measurements, shared by every probe ─────────────────────────────


@dataclass(frozen=True)
class Window:
    """Who measured, over which span of wall-clock time, with which labels."""

    probe: str
    started_at: float
    ended_at: float
    labels: Mapping[str, str] = field(default_factory=dict)

    def measurement(self, metric: str, value: float, unit: str, samples: int, note: str = "") -> Measurement:
        return Measurement(
            probe=self.probe,
            metric=metric,
            value=value,
            unit=unit,
            samples=samples,
            started_at=self.started_at,
            ended_at=self.ended_at,
            labels=dict(self.labels),
            note=note,
        )

    def with_labels(self, **labels: str) -> Window:
        return Window(self.probe, self.started_at, self.ended_at, {**self.labels, **labels})


def latency_measurements(
    window: Window, prefix: str, latencies_ms: Sequence[float], quantiles: Sequence[int] = (50, 95, 99)
) -> list[Measurement]:
    """`{prefix}_p50` … in ms; nothing when nothing was timed (see `summarize`)."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return []
    return [
        window.measurement(f"{prefix}_p{q}", _sorted_percentile(ordered, q), "ms", len(ordered))
        for q in quantiles
    ]


def error_measurements(window: Window, errors: int, total: int, note: str = "") -> list[Measurement]:
    """`requests`, `errors` (counts) and `error_rate` (ratio; omitted for zero requests)."""
    found = [
        window.measurement("requests", float(total), "count", total),
        window.measurement("errors", float(errors), "count", total, note),
    ]
    rate = error_rate(errors, total)
    if rate is not None:
        found.append(window.measurement("error_rate", rate, "ratio", total, note))
    return found
