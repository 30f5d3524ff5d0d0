"""Draw a timeline (from `chaos_mcp.reports.timeline`) as one self-contained inline SVG.

One small chart per series, sharing the time axis: shaded phases (baseline, injected,
recovery), event markers, dashed criterion thresholds, and the probe values as a line.
No scripts, fonts or external references: the SVG is plain text in the page.
"""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, CHART, GAP, LEFT, RIGHT, TOP = 960, 96, 44, 78, 20, 46
MIN_BAND = 6.0  # px: a phase too short to see at this scale is still drawn
PHASE_FILL = {"baseline": "#dbeafe", "injected": "#fee2e2", "recovery": "#dcfce7"}
POINT_FILL = {"baseline": "#1d4ed8", "during": "#b91c1c", "recovery": "#15803d"}
EVENT_STROKE = {
    "faults_injected": "#b91c1c",
    "detected": "#1d4ed8",
    "aborted": "#7c2d12",
    "auto_reverted": "#9a3412",
    "rollback": "#15803d",
    "recovered": "#6b21a8",
    "steady_again": "#166534",
}


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class _Scale:
    def __init__(self, lo: float, hi: float, out_lo: float, out_hi: float) -> None:
        if hi - lo < 1e-12:
            lo, hi = lo - 1.0, hi + 1.0
        self.lo, self.hi, self.out_lo, self.out_hi = lo, hi, out_lo, out_hi

    def __call__(self, value: float) -> float:
        return self.out_lo + (value - self.lo) / (self.hi - self.lo) * (self.out_hi - self.out_lo)


def render_svg(timeline: dict[str, Any]) -> str:
    series = timeline["series"]
    height = TOP + max(1, len(series)) * (CHART + GAP) + 10
    end = max(
        [timeline["end"], *(p["end"] for p in timeline["phases"]), *(e["t"] for e in timeline["events"])]
    )
    x = _Scale(0.0, max(end, 1e-3) * 1.02, LEFT, WIDTH - RIGHT)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-label="experiment timeline" font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        *_legend(),
    ]
    if not series:
        parts.append(f'<text x="{LEFT}" y="{TOP + 40}">No probe observations were journaled.</text>')
    for index, one in enumerate(series):
        parts += _chart(one, timeline, x, TOP + index * (CHART + GAP), labels=index == 0)
    parts.append(
        f'<text x="{WIDTH - RIGHT}" y="{height - 4}" text-anchor="end" fill="#555">'
        "seconds since the design</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _legend() -> list[str]:
    items, at = [], LEFT
    for name, fill in PHASE_FILL.items():
        items.append(f'<rect x="{at}" y="12" width="14" height="14" fill="{fill}" stroke="#999"/>')
        items.append(f'<text x="{at + 20}" y="23">{name}</text>')
        at += 100
    items.append(f'<line x1="{at}" y1="19" x2="{at + 24}" y2="19" stroke="#555" stroke-dasharray="5 3"/>')
    items.append(f'<text x="{at + 30}" y="23">criterion threshold</text>')
    return items


def _ticks(x: _Scale, top: float) -> list[str]:
    out, span = [], x.hi - x.lo
    step = next((s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300) if span / s <= 8), 600.0)
    tick = 0.0
    while tick <= x.hi:
        tx = x(tick)
        out.append(
            f'<line x1="{tx:.1f}" y1="{top + CHART}" x2="{tx:.1f}" y2="{top + CHART + 4}" stroke="#999"/>'
        )
        out.append(
            f'<text x="{tx:.1f}" y="{top + CHART + 15}" text-anchor="middle" fill="#555">{tick:g}s</text>'
        )
        tick += step
    return out


def _chart(one: dict[str, Any], timeline: dict[str, Any], x: _Scale, top: float, labels: bool) -> list[str]:
    values = [p[1] for p in one["points"]] + [t["value"] for t in one["thresholds"]]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or max(abs(hi) * 0.1, 1.0)
    y = _Scale(lo - pad, hi + pad, top + CHART, top)
    unit = f" ({one['unit']})" if one["unit"] else ""
    out = [
        f'<g class="series" data-metric="{escape(one["name"])}">',
        f'<text x="{LEFT}" y="{top - 6}" font-weight="bold">{escape(one["name"] + unit)}</text>',
    ]
    for phase in timeline["phases"]:
        x1, x2 = x(phase["start"]), x(max(phase["end"], phase["start"]))
        out.append(
            f'<rect x="{x1:.1f}" y="{top}" width="{max(x2 - x1, MIN_BAND):.1f}" height="{CHART}" '
            f'fill="{PHASE_FILL.get(phase["name"], "#eee")}"><title>{escape(phase["name"])}</title></rect>'
        )
    out.append(
        f'<rect x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" height="{CHART}" '
        'fill="none" stroke="#bbb"/>'
    )
    for value in (lo, hi) if hi != lo else (lo,):
        out.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{_fmt(value)}</text>')
    for index, event in enumerate(timeline["events"]):
        ex = x(event["t"])
        stroke = EVENT_STROKE.get(event["kind"], "#555")
        out.append(
            f'<line x1="{ex:.1f}" y1="{top}" x2="{ex:.1f}" y2="{top + CHART}" stroke="{stroke}" '
            f'stroke-width="1.5"><title>{escape(event["label"])} at {event["t"]:g}s</title></line>'
        )
        if labels:
            anchor = "end" if ex > WIDTH - RIGHT - 120 else "start"
            dx = -3 if anchor == "end" else 3
            out.append(
                f'<text x="{ex + dx:.1f}" y="{top + 12 + 13 * (index % 4)}" fill="{stroke}" '
                f'text-anchor="{anchor}">{escape(event["label"])}</text>'
            )
    for threshold in one["thresholds"]:
        ty = y(threshold["value"])
        out.append(
            f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" y2="{ty:.1f}" stroke="#555" '
            f'stroke-dasharray="5 3"><title>{escape(threshold["role"])}: {escape(threshold["text"])}</title>'
            "</line>"
        )
    points = sorted(one["points"], key=lambda p: p[0])
    path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v, _ in points)
    out.append(f'<polyline points="{path}" fill="none" stroke="#111827" stroke-width="1.8"/>')
    for t, v, phase in points:
        out.append(
            f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3.5" fill="{POINT_FILL.get(phase, "#111")}">'
            f"<title>{escape(phase)} t={t:g}s {_fmt(v)}{escape(unit)}</title></circle>"
        )
    out += _ticks(x, top)
    out.append("</g>")
    return out
