from __future__ import annotations

import json

import anyio
import pytest

from chaos_mcp.config import ScheduleTarget
from chaos_mcp.probes.schedule import ScheduleProbe
from chaos_mcp.schedule import api
from chaos_mcp.schedule.errors import ScheduleError

KEYS = {
    "coverage_pct",
    "uncovered_slots",
    "max_utilization",
    "mean_utilization",
    "acgme_violations",
    "defense_level",
    "n1_critical",
}


def test_metrics_have_the_agreed_keys_and_a_healthy_default(target: ScheduleTarget) -> None:
    metrics = api.schedule_metrics("sched", target)
    assert set(metrics) >= KEYS
    assert metrics["coverage_pct"] == 100.0 and metrics["uncovered_slots"] == 0
    assert 0.55 <= metrics["mean_utilization"] <= 0.75 and metrics["max_utilization"] < 0.8
    assert metrics["defense_level"] in (0, 1) and metrics["acgme_violations"] == 0
    assert metrics["n1_critical"] > 0


def test_analyze_contingency_is_json_and_ranks_every_faculty(target: ScheduleTarget) -> None:
    one = api.analyze_contingency("sched", target, 1)
    two = api.analyze_contingency("sched", target, 2)
    json.dumps(two)
    assert one["n2"] is None and len(one["n1"]) == 12  # type: ignore[arg-type]
    n2 = two["n2"]
    assert isinstance(n2, dict) and n2["pairs_evaluated"] == 66
    assert two["defense_level"]["name"] in ("GREEN", "YELLOW")  # type: ignore[index]
    assert "Defense level" in str(two["summary"])


def test_depth_must_be_1_or_2(target: ScheduleTarget) -> None:
    with pytest.raises(ScheduleError, match="depth"):
        api.analyze_contingency("sched", target, 3)


def test_pick_faculty_gives_the_busiest_and_the_most_critical_pair(target: ScheduleTarget) -> None:
    busiest = api.pick_faculty("sched", target, "highest_utilized")
    pair = api.pick_faculty("sched", target, "most_critical_pair")
    util = api.analyze_contingency("sched", target, 1)["utilization"]["faculty"]  # type: ignore[index]
    assert len(busiest) == 1 and util[busiest[0]]["utilization"] == max(
        u["utilization"] for u in util.values()
    )
    assert len(pair) == 2 and pair[0] != pair[1]
    with pytest.raises(ScheduleError, match="accepted"):
        api.pick_faculty("sched", target, "random")


def test_the_probe_reports_every_metric_with_its_unit(target: ScheduleTarget) -> None:
    measurements = anyio.run(ScheduleProbe("sched", target).sample)
    units = {m.metric: m.unit for m in measurements}
    assert units["coverage_pct"] == "%" and units["max_utilization"] == "ratio"
    assert units["defense_level"] == "level" and units["acgme_violations"] == "count"
    assert set(units) >= KEYS


def test_a_postgres_source_without_a_dsn_is_a_clear_error() -> None:
    pg = ScheduleTarget(kind="schedule", environment="test", source="postgres")
    with pytest.raises(ScheduleError, match="needs dsn"):
        api.schedule_metrics("pg", pg)


def test_metrics_are_computed_once_per_program_and_overlays_and_follow_every_change(
    target: ScheduleTarget,
) -> None:
    from chaos_mcp.schedule import overlay
    from chaos_mcp.schedule.analysis import analyze, metrics

    api.clear_cache()
    before = api.schedule_metrics("sched", target)
    assert api.schedule_metrics("sched", target) == before
    assert len(api._metrics_memo) == 1
    program = api.load_program(target)
    busiest = max(program.faculty, key=lambda f: f.id).id
    overlay.add_overlay("sched", {"id": "x", "kind": "remove_faculty", "faculty_ids": [busiest]})
    during = api.schedule_metrics("sched", target)
    assert during == metrics(analyze(api.load_program(target, "sched"), depth=2))
    assert during != before and len(api._metrics_memo) == 2
    overlay.remove_overlay("sched", "x")
    assert api.schedule_metrics("sched", target) == before
