from __future__ import annotations

from chaos_mcp.probes.base import Measurement


def pick(measurements: list[Measurement], metric: str, **labels: str) -> Measurement:
    """The one measurement of `metric` whose labels are exactly `labels`."""
    found = [m for m in measurements if m.metric == metric and m.labels == labels]
    assert len(found) == 1, f"expected one {metric} {labels}, got {found}"
    return found[0]


def metrics(measurements: list[Measurement], **labels: str) -> set[str]:
    return {m.metric for m in measurements if m.labels == labels}
