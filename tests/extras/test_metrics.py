"""Prometheus metrics computed from the journal, read by a second journal handle as another process would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.journal import Journal
from chaos_mcp.metrics import render_metrics
from tests.e2e.conftest import settings_with_journal
from tests.helpers import valid_design

pytestmark = pytest.mark.anyio
SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+|\+Inf)$")


def parse(text: str) -> dict[str, float]:
    """name{labels} → value; also checks every family is declared with HELP and TYPE first."""
    values: dict[str, float] = {}
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
            continue
        if line.startswith("# HELP ") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        family = re.sub(r"_(bucket|sum|count)$", "", match.group(1))
        assert family in declared or match.group(1) in declared, line
        values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


async def test_metrics_follow_an_experiment_from_injection_to_rollback_and_the_kill_switch(
    tmp_path: Path, state_dir: Path
) -> None:
    settings = settings_with_journal(tmp_path)
    other = Journal(settings.journal.resolved_url())  # what another server process would read
    try:
        async with Engine.running(settings) as engine:
            experiment_id = engine.design(valid_design(duration="30s"))["experiment_id"]
            await engine.measure(experiment_id)
            assert parse(render_metrics(other))['chaos_active_experiments{state="injected"}'] == 0
            await engine.inject(experiment_id, "test", "schedule")
            during = parse(render_metrics(other))
            assert during['chaos_injections_total{scenario="n1_removal",target="schedule"}'] == 1
            assert during['chaos_active_experiments{state="injected"}'] == 1
            assert during["chaos_active_faults"] == 1
            assert during["chaos_injection_duration_seconds_count"] == 0
            await engine.rollback(experiment_id)
            after = parse(render_metrics(other))
            assert (
                after['chaos_active_experiments{state="injected"}'] == 0 and after["chaos_active_faults"] == 0
            )
            assert after['chaos_rollbacks_total{status="COMPLETE"}'] == 1
            assert after['chaos_experiments_total{scenario="n1_removal",environment="test"}'] == 1
            assert after["chaos_injection_duration_seconds_count"] == 1
            assert 0 < after["chaos_injection_duration_seconds_sum"] < 30
            assert after['chaos_injection_duration_seconds_bucket{le="+Inf"}'] == 1
            assert after["chaos_kill_switch_engaged"] == 0
            await engine.abort_all("metrics test")
            assert parse(render_metrics(other))["chaos_kill_switch_engaged"] == 1
            engine.arm()
    finally:
        other.close()


async def test_histogram_buckets_are_cumulative_and_end_at_the_count(tmp_path: Path, state_dir: Path) -> None:
    settings = settings_with_journal(tmp_path)
    async with Engine.running(settings) as engine:
        for _ in range(2):
            experiment_id = engine.design(valid_design(duration="30s"))["experiment_id"]
            await engine.measure(experiment_id)
            await engine.inject(experiment_id, "test", "schedule")
            await engine.rollback(experiment_id)
        values = parse(render_metrics(engine.journal))
    buckets = [v for k, v in values.items() if k.startswith("chaos_injection_duration_seconds_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == values["chaos_injection_duration_seconds_count"] == 2


def test_an_empty_journal_renders_every_family_with_zeroes(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        text = render_metrics(journal)
    finally:
        journal.close()
    for family in (
        "chaos_experiments_total",
        "chaos_injections_total",
        "chaos_rollbacks_total",
        "chaos_active_experiments",
        "chaos_injection_duration_seconds",
    ):
        assert f"# TYPE {family} " in text
    values = parse(text)
    assert values["chaos_injection_duration_seconds_count"] == 0 and values["chaos_active_faults"] == 0
