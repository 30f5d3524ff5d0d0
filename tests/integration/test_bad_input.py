"""Bad input to probes and supervision: clear errors, and a supervisor that never stalls past its interval.

Each supervised test runs a harmless fault (end the sessions of an application nobody runs) for a
short window while one configured target is bad: a closed port, a server that accepts and never
answers, a Prometheus that answers with a value that is not a number. The journal's sample
timestamps show whether the supervisor kept its interval; the samples show what it saw.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from chaos_mcp.config import Settings, parse_settings
from chaos_mcp.criteria import parse_criterion
from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.journal import Event
from chaos_mcp.engine.measure import Measurer
from chaos_mcp.engine.supervisor import sampling_interval
from chaos_mcp.engine.verdicts import evaluate
from chaos_mcp.probes.base import Probe
from chaos_mcp.probes.prometheus import PrometheusProbe
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_data, result_text, settings_with_journal
from tests.fixtures.services import PostgresDatabase
from tests.integration.stand_ins import closed_port_url, fake_prometheus, hanging_server

pytestmark = pytest.mark.anyio
DURATION = 3.0
SLACK = 0.5


def settings_for(tmp_path: Path, postgres: PostgresDatabase, bad_url: str, prometheus: str = "") -> Settings:
    toml = "\n".join(
        [
            '[targets.db]\nkind = "postgres"\nenvironment = "test"',
            f"dsn = {json.dumps(postgres.admin_dsn)}",
            '[targets.bad]\nkind = "http"\nenvironment = "test"',
            f'base_url = {json.dumps(bad_url)}\nhealth = "/health"',
            prometheus,
        ]
    )
    return settings_with_journal(tmp_path, parse_settings(toml))


def harmless_design(**extra: Any) -> dict[str, Any]:
    return {
        "experiment_type": "infrastructure",
        "target_component": "db",
        "scenario": "db_connection_loss",
        "parameters": {"application_name": "nobody-runs-this"},
        "hypothesis": "When the sessions of an unused application end, the database should keep serving.",
        "environment": "test",
        # `bad` is in the radius: only the radius's targets are observed (issue 14, point 9).
        "blast_radius": {"scope": "one unused application's sessions", "targets": ["db", "bad"]},
        "duration": f"{DURATION:g}s",
        "rollback_plan": ["Nothing to restore: new sessions are allowed"],
        "steady_state": ["db.error_rate < 0.1%"],
        **extra,
    }


async def supervise(engine: Engine, **extra: Any) -> tuple[str, list[Event]]:
    """Design, baseline, inject with wait=true (the whole window); the journal's events afterwards."""
    experiment_id = engine.design(harmless_design(**extra))["experiment_id"]
    baseline = await engine.measure(experiment_id)
    assert baseline["steady"], baseline["verdicts"]
    await engine.inject(experiment_id, "test", "db", wait=True)
    return experiment_id, engine.journal.events(experiment_id)


def sample_times(events: list[Event]) -> list[float]:
    return [e.ts for e in events if e.kind == "sample"]


def assert_kept_its_interval(events: list[Event]) -> None:
    """A sample journaled at least every interval (+ slack) from injection to the deadline revert."""
    interval = sampling_interval(DURATION)
    injected = next(e.ts for e in events if e.kind == "faults_injected")
    ended = next(e.ts for e in events if e.kind in ("auto_reverted", "aborted"))
    marks = [injected, *sample_times(events), ended]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(marks)]
    assert len(marks) > 2, "the supervisor journaled no sample at all during the window"
    assert max(gaps) <= interval + SLACK, f"gaps between samples {gaps} exceed {interval}s + {SLACK}s"


def of_target(sample: Event, probe: str) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in sample.data["measurements"] if m["probe"] == probe and not m["labels"]}


async def test_an_unreachable_probe_target_is_measured_as_errors_and_the_supervisor_keeps_its_interval(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    async with Engine.running(settings_for(tmp_path, own_postgres, closed_port_url())) as engine:
        _, events = await supervise(engine)
    assert_kept_its_interval(events)
    samples = [e for e in events if e.kind == "sample"]
    for sample in samples:
        bad = of_target(sample, "bad")
        assert bad["error_rate"]["value"] == 1.0 and bad["healthy"]["value"] == 0.0
        assert "connect_error" in bad["error_rate"]["note"], bad["error_rate"]["note"]
        assert of_target(sample, "db")["error_rate"]["value"] == 0.0


async def test_a_probe_target_that_hangs_never_stalls_the_supervisor_past_its_interval(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase
) -> None:
    with hanging_server() as url:
        async with Engine.running(settings_for(tmp_path, own_postgres, url)) as engine:
            _, events = await supervise(engine)
    assert_kept_its_interval(events)
    for sample in (e for e in events if e.kind == "sample"):
        bad = of_target(sample, "bad")
        assert "probe_timeout" in bad or bad["error_rate"]["value"] == 1.0, bad
        assert of_target(sample, "db")["error_rate"]["value"] == 0.0, (
            "the hang must not hide the healthy target"
        )


class MeasurerWithPrometheus(Measurer):
    """The `bad` target measured by an instant query instead of HTTP (chaos.toml has no place for it yet)."""

    def __init__(self, settings: Settings, base_url: str) -> None:
        super().__init__(settings)
        self.prometheus = PrometheusProbe(
            name="bad", base_url=base_url, query="ALERTS", metric="alert_firing", timeout=1.0
        )

    def probes(self, target_name: str, options: dict[str, Any] | None = None) -> list[Probe]:
        return [self.prometheus] if target_name == "bad" else super().probes(target_name, options)


@pytest.fixture
def prometheus_url() -> Iterator[str]:
    with fake_prometheus() as url:
        yield url


async def test_a_non_numeric_prometheus_answer_is_a_clear_error_and_the_supervisor_keeps_its_interval(
    tmp_path: Path, state_dir: Path, own_postgres: PostgresDatabase, prometheus_url: str
) -> None:
    probe = PrometheusProbe(name="alerts", base_url=prometheus_url, query="ALERTS", metric="alert_firing")
    found = {m.metric: m for m in await probe.sample()}
    assert found["error_rate"].value == 1.0 and "alert_firing" not in found
    assert "'firing' is not a number" in found["error_rate"].note, found["error_rate"].note
    verdict = evaluate(parse_criterion("alerts.alert_firing >= 1"), list(found.values()))
    assert not verdict.passed and "error_rate" in verdict.note, verdict.note  # names what was measured

    # The catalogue knows `bad.alert_firing` from the configured query; the measurer runs it alone.
    url = json.dumps(prometheus_url)
    query = f'prometheus = [{{ base_url = {url}, query = "ALERTS", metric = "alert_firing" }}]'
    async with Engine.running(settings_for(tmp_path, own_postgres, prometheus_url, query)) as engine:
        engine.measurer = MeasurerWithPrometheus(engine.settings, prometheus_url)
        experiment_id, events = await supervise(
            engine,
            abort_conditions=["bad.alert_firing >= 1"],
            detection_signals=["bad.alert_firing >= 1"],
            blast_radius={
                "scope": "the unused application's sessions; bad is watched",
                "targets": ["db", "bad"],
            },
        )
        state = engine.journal.get_experiment(experiment_id)
    assert_kept_its_interval(events)
    assert state is not None and state.state == "injected", "a bad answer must neither abort nor crash"
    assert not [e for e in events if e.kind in ("aborted", "detected", "failed")]
    for sample in (e for e in events if e.kind == "sample"):
        [check] = sample.data["abort_checks"]
        assert not check["passed"] and check["actual"] is None and check["note"], check


async def test_thresholds_in_the_wrong_unit_are_refused_at_design_time_with_what_is_accepted(
    tmp_path: Path, state_dir: Path
) -> None:
    toml = (
        '[targets.db]\nkind = "postgres"\nenvironment = "test"\ndsn = "postgresql://postgres@127.0.0.1:9/x"\n'
    )
    raw = {
        "experiment_type": "infrastructure",
        "target_component": "db",
        "scenario": "db_connection_loss",
        "hypothesis": "When the database connection is lost, the API should serve cached data.",
        "environment": "test",
        "blast_radius": {"scope": "the test database", "targets": ["db"]},
        "duration": "10s",
        "rollback_plan": ["Allow connections again"],
        "abort_conditions": ["db.error_rate > 50 ms"],
        "steady_state": ["db.latency_p95 < 5%"],
        "success_criteria": ["recovery_time < 30 %"],
        "detection_signals": ["db.error_rate > 2 s"],
    }
    async with Client(
        build_server(settings_with_journal(tmp_path, parse_settings(toml))), mode="legacy"
    ) as client:
        answer = await client.call_tool("design_experiment", raw)
        assert answer.is_error
        text = result_text(answer)
        listed = result_data(await client.call_tool("list_experiments", {}))
    assert text.count("\n- ") == 4, text  # the four wrong units, and nothing else
    for field, metric, unit, accepted in [
        ("abort_conditions[0]", "db.error_rate", "'ms'", "ratio, %"),
        ("steady_state[0]", "db.latency_p95", "'%'", "us, µs, ms, s"),
        ("success_criteria[0]", "recovery_time", "'%'", "us, µs, ms, s"),
        ("detection_signals[0]", "db.error_rate", "'s'", "ratio, %"),
    ]:
        [line] = [x for x in text.splitlines() if x.startswith(f"- {field}:")]
        assert metric in line and f"threshold in {unit} cannot be compared" in line, line
        assert f"accepted units: {accepted}" in line, line
    assert listed["experiments"] == [], "a refused design must not be recorded"
